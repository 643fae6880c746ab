"""The audit trail: append-only, hash-chained events, written in the transaction of what they record.

Each event carries the hash of the one before it in its *lane*, and its own hash covers its lane,
its sequence number, that previous hash and its contents::

    hash = sha256("{lane}:{seq}\\n{prev_hash}\\n{prefix}\\n{data}")      (store.chain)
    prefix = JSON of [time, kind, actor, subject]      data = JSON of the payload, keys sorted

so altering, removing or inserting an event breaks the chain at that event (``verify_chain``).

Why lanes: a chain is one line, so an event can only be chained to the previous one once that one
is certain to commit; the writer holds the lane's head row from its append until its commit. With
one lane, every write on PostgreSQL would queue behind the previous write's commit (its WAL flush).
Several independent chains (``LANES``, each a row of ``audit_head``) let that many transactions
commit at once; each transaction takes the next lane in turn (``next_lane``: a process's concurrent
writers then never wait for each other's lane, as two of eight would at random), from a random
start in each process. SQLite has one writer at a time, so it uses
lane 0 only. The head of the trail is the digest of every lane's head (``head_digest``).

An append is one statement on PostgreSQL (a data-modifying CTE: advance the lane's head, insert the
event from it), with the hash computed by the database (``chain_hash`` rendered for ``sha256()``), so the
writer needs no read first. On SQLite the identity writes share a group commit (``store._group_commit``),
which holds the database's write lock from its first statement to its COMMIT: its events are chained
in process from the head read once per batch, and written once, just before the COMMIT, in its
transaction (``_GroupedEvents``). Other SQLite writers advance the head and insert the event in two
statements, the hash computed by a Python function ``store.database`` registers on every connection.
"""

from __future__ import annotations

import getpass
import hashlib
import itertools
import os
import random
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from scimward.store._direct import Tx
from scimward.store.chain import chain_hash
from scimward.store.errors import DatabaseError
from scimward.store.tables import audit_events, audit_head
from scimward.store.timeutil import utcnow

#: Independent chains on PostgreSQL (see the module docstring); migration 0012 creates their heads.
LANES = 16
GENESIS = "0" * 64
ACTOR_ENV = "SCIMWARD_ACTOR"

#: What events record. A new kind is added here, in docs/evidence.md, and where it is written.
KINDS = frozenset(
    {
        "change",
        "decision",
        "approval",
        "breaker",
        "push",
        "reconcile_run",
        "config",
        "token_issued",
        "token_revoked",
        "token_refused",
        "token_refused_summary",
        "finding_status",
        "console_sign_in",
        "console_sign_out",
        "console_refused",
        "console_action",
    }
)

_e, _h = audit_events.c, audit_head.c


class AuditError(DatabaseError):
    """The audit trail cannot be written (its head rows are missing: the schema is not migrated)."""


def default_actor() -> str:
    """Who is acting on this host: ``$SCIMWARD_ACTOR``, else the operating-system user."""
    return os.environ.get(ACTOR_ENV) or getpass.getuser()


# -- the hash ------------------------------------------------------------------------------------------


def event_prefix(time: datetime, kind: str, actor: str, subject: str) -> str:
    """The hashed form of an event's fixed fields; ``time`` to the microsecond, as both dialects store it."""
    return orjson.dumps([stamp(time), kind, actor, subject]).decode()


def stamp(time: datetime) -> str:
    """An event's time as it is hashed: ISO 8601 to the microsecond (``2026-12-03T08:00:00.000000``)."""
    return time.isoformat(timespec="microseconds")


def stamp_of_stored(text: str) -> str:
    """``stamp`` from the text SQLite keeps (``2026-12-03 08:00:00.000000``), without parsing a date."""
    if len(text) == 26 and text[10] == " ":
        return text[:10] + "T" + text[11:]
    return stamp(datetime.fromisoformat(text))


def canonical_data(data: Mapping[str, Any] | None) -> str:
    """The payload as stored and hashed: JSON with sorted keys, so one payload has one encoding."""
    return orjson.dumps(dict(data or {}), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


class _chain_hash(GenericFunction[str]):
    """``chain_hash`` in SQL: SQLite calls the Python function; PostgreSQL computes the same bytes."""

    type = sa.String()
    name = "scimward_chain_hash"
    inherit_cache = True


@compiles(_chain_hash, "postgresql")
def _chain_hash_postgresql(element: _chain_hash, compiler: SQLCompiler, **kw: Any) -> str:
    lane, seq, prev, prefix, data = (compiler.process(arg, **kw) for arg in element.clauses)
    text = (
        f"CAST({lane} AS TEXT) || ':' || CAST({seq} AS TEXT) || chr(10) || {prev} || chr(10) || "
        f"{prefix} || chr(10) || {data}"
    )
    return f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')"


# -- appending -----------------------------------------------------------------------------------------

_FIELDS = ("time", "kind", "actor", "subject", "data")


def _param(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=sa.DateTime() if name == "time" else sa.Text())


#: Move a lane's head on by one event; the new hash is computed from the old head, in the statement.
_ADVANCE = (
    audit_head.update()
    .where(_h.lane == sa.bindparam("w_lane"))
    .values(
        seq=_h.seq + 1,
        prev_hash=_h.hash,
        hash=_chain_hash(_h.lane, _h.seq + 1, _h.hash, _param("prefix"), _param("data")),
    )
    .returning(_h.lane, _h.seq, _h.prev_hash, _h.hash)
)

_head = _ADVANCE.cte("head")
#: PostgreSQL: both steps in one statement. The UPDATE's row lock orders concurrent appends to a lane.
APPEND_POSTGRES = (
    audit_events.insert()
    .from_select(
        ["lane", "seq", *_FIELDS, "prev_hash", "hash"],
        sa.select(_head.c.lane, _head.c.seq, *(_param(name) for name in _FIELDS), _head.c.prev_hash, _head.c.hash),
    )
    .returning(_e.lane, _e.seq, _e.hash)
)

#: SQLite: the event from the head just advanced (the transaction holds the database's write lock).
_INSERT = audit_events.insert().values(
    {name: sa.bindparam(name) for name in ("lane", "seq", *_FIELDS, "prev_hash", "hash")}
)


@dataclass(frozen=True)
class Appended:
    lane: int
    seq: int
    hash: str


def _event(
    kind: str, actor: str, subject: str, data: Mapping[str, Any] | None, moment: datetime
) -> tuple[str, dict[str, Any]]:
    """One event's hashed prefix and its columns but time (which each transaction kind binds its own way)."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}")
    fields: dict[str, Any] = {"kind": kind, "actor": actor, "subject": subject, "data": canonical_data(data)}
    return event_prefix(moment, kind, actor, subject), fields


async def append(
    tx: Tx | AsyncConnection,
    *,
    kind: str,
    actor: str,
    subject: str = "",
    data: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Appended:
    """Record one audit event in the caller's open transaction: it commits or rolls back with it.

    ``tx`` is either transaction kind the store uses: ``store._direct.Tx`` (the identity write path)
    or a SQLAlchemy ``AsyncConnection`` inside ``Database.write()``. ``data`` must be JSON-able.
    Call it as late in the transaction as possible: the lane stays locked until the commit.
    """
    moment = at or utcnow()
    prefix, fields = _event(kind, actor, subject, data, moment)
    if isinstance(tx, Tx):
        postgres = tx.postgres
        fields["time"] = tx.time(moment)
    else:
        postgres = tx.dialect.name == "postgresql"
        fields["time"] = moment
    if isinstance(tx, Tx) and tx.grouped:
        return await _append_grouped(tx, prefix, fields)
    lane = _lane_of(tx) if postgres else 0
    params = {"w_lane": lane, "prefix": prefix, **fields}
    if postgres:
        rows = await _rows(tx, APPEND_POSTGRES, params)
        if not rows:
            raise AuditError(f"the audit trail has no head for lane {lane}: run `scimward db upgrade`")
        return Appended(int(rows[0][0]), int(rows[0][1]), str(rows[0][2]))
    heads = await _rows(tx, _ADVANCE, params)
    if not heads:
        raise AuditError("the audit trail has no head for lane 0: run `scimward db upgrade`")
    _, seq, prev_hash, new_hash = heads[0]
    insert = {"lane": lane, "seq": seq, "prev_hash": prev_hash, "hash": new_hash, **fields}
    if isinstance(tx, Tx):
        await tx.run(_INSERT, insert)
    else:
        await tx.execute(_INSERT, insert)
    return Appended(lane, int(seq), str(new_hash))


#: SQLite's lane 0 as a group commit reads it once (``_append_grouped``) and moves it once.
_HEAD_OF_LANE = sa.select(_h.seq, _h.hash).where(_h.lane == sa.bindparam("lane"))
#: A lane's head, locked for the events a batch of writes appends (``append_many``).
_HEAD_FOR_UPDATE = sa.select(_h.seq, _h.hash).where(_h.lane == sa.bindparam("lane")).with_for_update()
_MOVE_HEAD = (
    audit_head.update()
    .where(_h.lane == sa.bindparam("w_lane"))
    .values(seq=sa.bindparam("v_seq"), prev_hash=sa.bindparam("v_prev_hash"), hash=sa.bindparam("v_hash"))
)


class _GroupedEvents:
    """The events of one SQLite group commit, chained in process from the head it read, written just
    before its COMMIT: one INSERT for all of them and one UPDATE of the head, where each append would
    otherwise advance the head and insert its event (two statements). ``store._group_commit.Deferred``."""

    __slots__ = ("_bind_head", "_bind_insert", "_head_sql", "_insert_sql", "events", "start")

    def __init__(self, tx: Tx, seq: int, digest: str) -> None:
        self.start = (seq, digest)
        #: (seq, prev_hash, hash, the INSERT's bound parameters) of each event so far
        self.events: list[tuple[int, str, str, Any]] = []
        self._insert_sql, self._bind_insert = tx.compiled(_INSERT)
        self._head_sql, self._bind_head = tx.compiled(_MOVE_HEAD)

    def head(self) -> tuple[int, str]:
        if not self.events:
            return self.start
        seq, _, digest, _ = self.events[-1]
        return seq, digest

    def add(self, seq: int, prev_hash: str, digest: str, fields: Mapping[str, Any]) -> None:
        row = {"lane": 0, "seq": seq, "prev_hash": prev_hash, "hash": digest, **fields}
        self.events.append((seq, prev_hash, digest, self._bind_insert(row)))

    def mark(self) -> int:
        return len(self.events)

    def rollback_to(self, mark: int) -> None:
        del self.events[mark:]

    def flush(self, cursor: Any) -> None:
        if not self.events:
            return
        cursor.executemany(self._insert_sql, [event[3] for event in self.events])
        seq, prev_hash, digest, _ = self.events[-1]
        cursor.execute(
            self._head_sql, self._bind_head({"w_lane": 0, "v_seq": seq, "v_prev_hash": prev_hash, "v_hash": digest})
        )


async def _append_grouped(tx: Tx, prefix: str, fields: Mapping[str, Any]) -> Appended:
    """``append`` in a SQLite group commit: hashed here, chained to the batch's events before it."""
    grouped = tx.deferred("audit")
    if not isinstance(grouped, _GroupedEvents):
        heads = await tx.rows(_HEAD_OF_LANE, {"lane": 0})
        if not heads:
            raise AuditError("the audit trail has no head for lane 0: run `scimward db upgrade`")
        grouped = _GroupedEvents(tx, int(heads[0][0]), str(heads[0][1]))
        tx.defer("audit", grouped)
    seq, prev_hash = grouped.head()
    seq += 1
    digest = chain_hash(0, seq, prev_hash, prefix, fields["data"])
    grouped.add(seq, prev_hash, digest, fields)
    return Appended(0, seq, digest)


class Recorded(Protocol):
    """An event for ``append_many``, as ``audit_records.Event`` holds it (its time is required there)."""

    @property
    def kind(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def at(self) -> datetime | None: ...


async def append_many(tx: Tx, events: Sequence[Recorded]) -> None:
    """Record several events in the caller's open transaction, in order, as ``append`` would one by one.

    For a batch of writes (``store.identity._batched``): the lane's head is read and locked once, the
    events' hashes are computed here (``chain_hash``, the bytes the database's own computation hashes),
    the events inserted by one ``executemany`` and the head moved once. In a SQLite group commit they
    join its events (``_append_grouped``), written with them before its COMMIT. As with ``append``: call
    it last.
    """
    if not events:
        return
    if tx.grouped:
        for event in events:
            assert event.at is not None
            prefix, fields = _event(event.kind, event.actor, event.subject, event.data, event.at)
            await _append_grouped(tx, prefix, {**fields, "time": tx.time(event.at)})
        return
    lane = _lane_of(tx) if tx.postgres else 0
    heads = await tx.rows(_HEAD_FOR_UPDATE, {"lane": lane})
    if not heads:
        raise AuditError(f"the audit trail has no head for lane {lane}: run `scimward db upgrade`")
    seq, last = int(heads[0][0]), str(heads[0][1])
    prev = last
    rows: list[dict[str, Any]] = []
    for event in events:
        assert event.at is not None
        prefix, fields = _event(event.kind, event.actor, event.subject, event.data, event.at)
        seq += 1
        prev, last = last, chain_hash(lane, seq, last, prefix, fields["data"])
        rows.append({"lane": lane, "seq": seq, "time": tx.time(event.at), **fields, "prev_hash": prev, "hash": last})
    await tx.run(_INSERT, rows)
    await tx.run(_MOVE_HEAD, {"w_lane": lane, "v_seq": seq, "v_prev_hash": prev, "v_hash": last})


def fused_append(after: Any, *first: Any) -> tuple[Any, Any]:
    """CTEs that append one event inside another statement, only when the CTE ``after`` returns a row.

    For the fused writes (``store.identity._fused``): the head of lane ``a_lane`` advances and the
    event is inserted in the same statement as what it records, so both commit or neither does. Its
    values are bound as ``fused_params`` names them (``a_``: clear of the statement's own parameters).

    The lane must be locked last, as the plain path locks it (its append comes last): PostgreSQL runs
    a statement's data-modifying CTEs in an order of its own, so the lane's update reads the CTEs in
    ``first`` (the count, the outbox rows, the change row), which makes them run, and take their
    locks, before it. Otherwise two writers could each hold what the other waits for (a deadlock).
    """
    ran_first = [sa.select(sa.func.count()).select_from(cte).scalar_subquery() >= 0 for cte in first]
    head = (
        audit_head.update()
        .where(_h.lane == sa.bindparam("a_lane"), sa.exists(sa.select(sa.literal(1)).select_from(after)), *ran_first)
        .values(
            seq=_h.seq + 1,
            prev_hash=_h.hash,
            hash=_chain_hash(_h.lane, _h.seq + 1, _h.hash, _param("a_prefix"), _param("a_data")),
        )
        .returning(_h.lane, _h.seq, _h.prev_hash, _h.hash)
        .cte("audit_advanced")
    )
    typed = [sa.cast(_param(f"a_{name}"), audit_events.c[name].type) for name in _FIELDS]
    event = (
        audit_events.insert()
        .from_select(
            ["lane", "seq", *_FIELDS, "prev_hash", "hash"],
            sa.select(head.c.lane, head.c.seq, *typed, head.c.prev_hash, head.c.hash),
        )
        .returning(_e.seq)
        .cte("audit_appended")
    )
    return head, event


def fused_params(
    *, kind: str, actor: str, subject: str, data: Mapping[str, Any] | None, at: datetime
) -> dict[str, Any]:
    """The values ``fused_append``'s CTEs bind, for one event (PostgreSQL: the next lane, ``next_lane``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}")
    return {
        "a_lane": next_lane(),
        "a_prefix": event_prefix(at, kind, actor, subject),
        "a_time": at,
        "a_kind": kind,
        "a_actor": actor,
        "a_subject": subject,
        "a_data": canonical_data(data),
    }


_LANE_TURNS = itertools.count(random.randrange(LANES))


def next_lane() -> int:
    """The lane of a transaction's events: the lanes in turn, from a random start per process."""
    return next(_LANE_TURNS) % LANES


#: The lane each open transaction appends to: one per transaction, so that two transactions that append
#: several events never hold two lanes in opposite orders (a deadlock).
_TRANSACTION_LANES: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _lane_of(tx: Tx | AsyncConnection) -> int:
    key: Any = tx if isinstance(tx, Tx) else (tx.get_transaction() or tx)
    lane = _TRANSACTION_LANES.get(key)
    if lane is None:
        lane = _TRANSACTION_LANES[key] = next_lane()
    return lane


async def _rows(tx: Tx | AsyncConnection, statement: Any, params: dict[str, Any]) -> list[Any]:
    if isinstance(tx, Tx):
        return list(await tx.rows(statement, params))
    return list((await tx.execute(statement, params)).all())


# -- verifying -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    lane: int
    seq: int
    time: datetime
    kind: str
    actor: str
    subject: str
    data: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "seq": self.seq,
            "time": self.time.isoformat(timespec="microseconds") + "Z",
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "data": orjson.loads(self.data),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Break:
    """Where the chain first breaks: the event named, and what is wrong with it."""

    lane: int
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit event {self.lane}:{self.seq} {self.problem}"


@dataclass(frozen=True)
class Verdict:
    events: int
    broken: Break | None


def verify_chain(events: Iterable[StoredEvent], heads: Mapping[int, tuple[int, str]]) -> Verdict:
    """Walk events in (lane, seq) order against each lane's head (lane -> (seq, hash)); stop at the first break.

    A changed field shows as a hash that does not match the event's contents; a removed event as a
    gap in the sequence (or, at a lane's end, a head beyond the last event); an inserted one as an
    event whose ``prev_hash`` is not its predecessor's hash, or that lies beyond its lane's head.
    """
    check = ChainCheck(heads)
    for event in events:
        if (problem := check.step(event)) is not None:
            return Verdict(check.events, problem)
    return Verdict(check.events, check.end())


class ChainCheck:
    """``verify_chain`` page by page, for a walk that reads the trail in pages (``store.governance.audit_trail``).

    Each lane keeps its own place, so the pages of several lanes may come interleaved (the walk reads
    a window of sequence numbers in every lane before the next window), each lane's in seq order.
    """

    def __init__(self, heads: Mapping[int, tuple[int, str]]) -> None:
        self.heads = heads
        self.events = 0
        #: lane -> (the last seq walked, its hash)
        self._walked: dict[int, tuple[int, str]] = {}

    def step(self, event: StoredEvent) -> Break | None:
        """The break at ``event`` (each lane's events must come in seq order), or None."""
        return self.step_row(
            event.lane,
            event.seq,
            stamp(event.time),
            event.kind,
            event.actor,
            event.subject,
            event.data,
            event.prev_hash,
            event.hash,
        )

    def step_row(
        self,
        lane: int,
        seq: int,
        time: str,
        kind: str,
        actor: str,
        subject: str,
        data: str,
        prev_hash: str,
        digest: str,
    ) -> Break | None:
        """``step`` on an event's fields as read, ``time`` already in its hashed form (``stamp``)."""
        return self.follow(lane, [(seq, prev_hash, digest, time, kind, actor, subject, data)], hashed_here(lane))

    def follow(
        self, lane: int, rows: Iterable[Sequence[Any]], matches: Callable[[Sequence[Any]], bool]
    ) -> Break | None:
        """Step through the next events of ``lane``, in seq order.

        Each row starts ``(seq, prev_hash, hash, ...)``; ``matches(row)`` says whether the event's
        contents give its hash (``hashed_here``: recomputed from the rest of the row; or the
        database's own verdict). The loop is the walk's hot path: a million events pass through it.
        """
        walked, last = self._walked.get(lane, (0, GENESIS))
        head = self.heads.get(lane)
        limit = -1 if head is None else head[0]
        expected, counted = walked + 1, 0
        try:
            for row in rows:
                seq, prev_hash, digest = row[0], row[1], row[2]
                counted += 1
                if seq != expected:
                    return Break(lane, expected, f"is missing: removed (the next event in lane {lane} is {seq})")
                if seq > limit:
                    return Break(lane, seq, "lies beyond the lane's head: inserted")
                if prev_hash != last:
                    return Break(
                        lane,
                        seq,
                        "does not follow the event before it (its prev_hash differs): "
                        "inserted, or the one before it altered",
                    )
                if not matches(row):
                    return Break(lane, seq, "does not match its hash: altered")
                expected, last = seq + 1, digest
            return None
        finally:
            self.events += counted
            if counted:
                self._walked[lane] = (expected - 1, last)

    def end(self) -> Break | None:
        """After the last event: the break of a lane whose last events, or all of them, are missing."""
        for lane in sorted(set(self._walked) | set(self.heads)):
            head_seq, head_hash = self.heads.get(lane, (0, GENESIS))
            if lane not in self._walked:
                if head_seq > 0:
                    return Break(
                        lane, 1, f"is missing: removed (lane {lane} holds no events, its head is at {head_seq})"
                    )
                continue
            seq, last = self._walked[lane]
            if head_seq > seq:
                return Break(lane, seq + 1, f"is missing: removed (lane {lane}'s head is at {head_seq})")
            if head_hash != last:
                return Break(lane, seq, "is not the lane's head (the head's hash differs): altered")
        return None


def hashed_here(lane: int, stamped: Callable[[Any], str] = str) -> Callable[[Sequence[Any]], bool]:
    """``ChainCheck.follow``'s check for rows ``(seq, prev_hash, hash, time, kind, actor, subject, data)``:
    the event's hash recomputed in process, ``stamped(time)`` its time as hashed (``stamp``)."""
    dumps = orjson.dumps

    def matches(row: Sequence[Any]) -> bool:
        seq, prev_hash, digest, time, kind, actor, subject, data = row
        stored: str = digest
        return chain_hash(lane, seq, prev_hash, dumps([stamped(time), kind, actor, subject]).decode(), data) == stored

    return matches


def head_digest(heads: Mapping[int, tuple[int, str]]) -> str:
    """One digest for the whole trail: every lane's head, so a copy kept elsewhere pins all of them."""
    text = "\n".join(f"{lane}:{seq}:{digest}" for lane, (seq, digest) in sorted(heads.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def stored_events(rows: Iterable[Any]) -> Iterator[StoredEvent]:
    """Rows of ``SELECT_EVENTS`` as events; SQLite's driver hands times back as text."""
    for lane, seq, time, kind, actor, subject, data, prev_hash, digest in rows:
        yield StoredEvent(
            int(lane),
            int(seq),
            datetime.fromisoformat(time) if isinstance(time, str) else time,
            kind,
            actor,
            subject,
            data,
            prev_hash,
            digest,
        )


#: Every event in chain order, as ``stored_events`` reads them.
SELECT_EVENTS = sa.select(
    _e.lane, _e.seq, _e.time, _e.kind, _e.actor, _e.subject, _e.data, _e.prev_hash, _e.hash
).order_by(_e.lane, _e.seq)
SELECT_HEADS = sa.select(_h.lane, _h.seq, _h.hash).order_by(_h.lane)
