"""The audit A/B's control arm (benchmarks only): the write path with its audit event taken out.

``bench/audit_cost.py`` calls ``without_audit()`` in its ``no-audit`` child; ``bench/run.py --audit-ab``
puts ``bench/noaudit/`` on the ``no-audit`` server's PYTHONPATH, whose ``sitecustomize`` calls it as that
process starts. Nothing in ``src/`` reads a switch: the arm is this monkeypatch in one benchmark process,
so no installed scimward can be told to skip its audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: What the ``no-audit`` server writes to its log as it starts; ``bench/run.py`` checks it is there.
MARK = "bench/no_audit: the audit append is taken out of this process's write path"


def without_audit() -> Callable[[], None]:
    """``audit.append`` answers without writing, ``audit.append_many`` writes nothing, and the fused
    PostgreSQL statements are built without their two audit CTEs (this process only). Answers what
    puts the audit event back (``bench/audit_cost.py --interleave`` switches arms in one process)."""
    from scimward.store.governance import audit
    from scimward.store.identity import _fused

    saved = audit.append, audit.append_many, _fused._audited

    def restore() -> None:
        audit.append, audit.append_many, _fused._audited = saved  # type: ignore[assignment]
        _fused.update_row.cache_clear()
        _fused.insert_row.cache_clear()

    async def append(*_args: Any, **_kwargs: Any) -> Any:
        return audit.Appended(0, 0, audit.GENESIS)

    async def append_many(*_args: Any, **_kwargs: Any) -> None:
        return None

    audit.append = append  # type: ignore[assignment]
    audit.append_many = append_many  # type: ignore[assignment]
    _fused._audited = lambda statement, _changed, *_first: statement  # type: ignore[assignment]
    _fused.update_row.cache_clear()  # built with their audit CTEs if they were used before
    _fused.insert_row.cache_clear()
    return restore
