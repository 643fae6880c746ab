"""Storage: the database core, and a sub-package per concern, each behind a small facade.

The core lives here: the database handle, engines and migrations (``database``, ``migrations/``), the
tables (``tables``), ids and time as stored (``ids``, ``timeutil``), the schema check (``schema_version``),
the filter AST compiled to SQL (``filter_sql``, shared by the identity and provisioning rooms and the
gate), database failures (``errors``, ``failures``) and the driver transaction every room writes in
(``_direct``, with SQLite's group commit in ``_group_commit``). The rooms::

    identity/       identities: reads, the write pipeline's apply, cursors, counts, passwords
    provisioning/   outbox, links, push results, read-back, targets, the effective state read downstream
    governance/     changes and the gate's rows, findings and reconcile runs, the audit trail
    auth/           API tokens, hub secrets

Outer layers import a room's facade (``scimward.store.identity``), never its modules (the import contract).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.store._direct import Direct, Encoder, Tx, decode_json, decode_time

__all__ = ["Direct", "Encoder", "Tx", "decode_json", "decode_time"]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
