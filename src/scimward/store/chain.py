"""The audit trail's chain hash, alone so that the engine setup (``store.database``) and the audit trail share it.

An event's hash covers its lane, its sequence number, the previous event's hash and its contents
(``prefix``: the JSON of time, kind, actor and subject; ``data``: the payload's canonical JSON).
Lines and the colon separate the parts unambiguously: the hashes are hex, the numbers decimal and
the JSON never holds a raw line break.
"""

from __future__ import annotations

import hashlib


def chain_hash(lane: int, seq: int, prev_hash: str, prefix: str, data: str) -> str:
    """The one definition: SQLite calls it in the append statement, ``verify_chain`` recomputes it,
    and ``store.governance.audit`` renders the same bytes for PostgreSQL's ``sha256()``."""
    return hashlib.sha256(f"{lane}:{seq}\n{prev_hash}\n{prefix}\n{data}".encode()).hexdigest()
