"""``scimward import``: an HR export, a row at a time, each row a change through the gate (``hr:NAME``).

For each row: parse and check it (``records``), correlate it with a hub User (``correlate``), propose
the User's next state from the attributes the source owns (``proposal``), validate that state as SCIM,
and only then write: the change through the gate, then the record. A row that fails any check before
the write is reported with its line and nothing of it is written; a row the gate denies is reported
the same way (its denied change is recorded by the gate).

The writes of ``CHUNK`` rows go to the store together (``IdentityStore.update_many``): each row is
still its own change, proposed from its User as the store holds it under the chunk's lock, decided by
the gate, recorded and audited, but the chunk's identities are read by one query and its rows written
by statement in one transaction; a row the database refuses is applied again alone, with its
neighbours, so it rejects only itself. ``chunk=1`` writes each row alone through ``IdentityStore.put``
(the plain path, which ``tests/test_hr_batched_equivalence.py`` compares with the chunks). Records that
match nobody, or more than one User, are stored unmatched and become findings in the three-way check
(``check``); nothing is guessed.
"""

from __future__ import annotations

import asyncio
import marshal
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from scimward.governance.sources.correlate import CorrelationIndex
from scimward.governance.sources.movers import Move, move_of, review_moves
from scimward.governance.sources.proposal import DEFAULT_OWNED, propose
from scimward.governance.sources.readers import Export, Row
from scimward.governance.sources.records import BadRow, HrRecord, RowFormat, parse_record
from scimward.policy import policies
from scimward.policy.ownership import Ownership, SourceSettings, attribute_path
from scimward.scim.errors import NotFound, PreconditionFailed, ScimError
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import (
    Correlated,
    HubUser,
    PolicyDenied,
    SourceRepository,
    SourceRow,
    StoredRecord,
    hub_user,
    hub_users,
)
from scimward.store.identity import Edit, IdentityStore, StoredIdentity, etag
from scimward.store.timeutil import utcnow

BATCH = 500
#: Rows whose writes go to the store in one transaction (``IdentityStore.update_many``).
CHUNK = 500
#: Chunks written at once on PostgreSQL: while the database writes one, the next is prepared (SQLite has
#: one writer and runs in this process: a second chunk would only wait for the first).
IN_FLIGHT = 2
#: Attributes kept of every User for the import's comparison and the three-way check.
KEPT = ("active", "userName", "emails", "employeeNumber", "manager", "department")


@dataclass
class ImportReport:
    rows: int = 0
    changed: int = 0
    unchanged: int = 0
    created: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    #: (number, ``line N: what is wrong`` or ``record N: ...``) for each row not applied, in file order.
    rejected: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False
    #: The access reviews opened for movers (``movers``), by name.
    reviews: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def lines(self) -> list[str]:
        return [line for _, line in self.rejected]

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "unmatched": self.unmatched,
            "ambiguous": self.ambiguous,
            "rejected": self.lines,
            "reviews": self.reviews,
            "dry_run": self.dry_run,
        }


@dataclass
class _Write:
    """A row whose record changes its User: written with the rows of its chunk."""

    record: HrRecord
    identity_id: str
    values: dict[str, Any]
    set_before: bool | None
    #: Once proposed against the User as locked: its effective state, the state written and ``set_active``.
    proposed: tuple[dict[str, Any], dict[str, Any], bool | None] | None = None
    #: Why the row cannot be written (nothing of it is).
    problem: BadRow | None = None


class _Chunks:
    """The rows an import writes, by chunk: ``write`` writes one (``Importer._write``), up to ``in_flight``
    at once, and what they answer goes to ``done``. A User's rows apply in file order: a row whose User
    has a row in a chunk not yet written waits for it."""

    def __init__(
        self,
        in_flight: int,
        write: Callable[[list[_Write]], Awaitable[list[StoredRecord]]],
        done: list[StoredRecord],
    ) -> None:
        self.in_flight = in_flight
        self.write = write
        self.done = done
        self.writes: list[_Write] = []
        self._ids: set[str] = set()  # the identities of ``writes``
        self._flying: list[tuple[asyncio.Task[list[StoredRecord]], set[str]]] = []

    async def add(self, write: _Write) -> None:
        if write.identity_id in self._ids:
            await self.flush()
        if any(write.identity_id in ids for _, ids in self._flying):
            await self.land(0)
        self.writes.append(write)
        self._ids.add(write.identity_id)

    async def flush(self) -> None:
        """Start writing the chunk so far; wait while more than ``in_flight`` are being written."""
        if self.writes:
            ready, ids = self.writes, self._ids
            self.writes, self._ids = [], set()
            self._flying.append((asyncio.create_task(self._written(ready)), ids))
        await self.land(self.in_flight - 1)

    async def land(self, keep: int) -> None:
        """Wait until at most ``keep`` chunks are being written."""
        while len(self._flying) > keep:
            task, _ = self._flying.pop(0)
            await task

    async def _written(self, ready: list[_Write]) -> list[StoredRecord]:
        stored = await self.write(ready)
        self.done.extend(stored)
        return stored


def owned_attributes(ownership: Ownership, source: str) -> list[str]:
    """What ``hr:NAME`` owns: the policy's ``attributes:`` say, else ``proposal.DEFAULT_OWNED``."""
    return ownership.owned_by(source) if ownership.owners else list(DEFAULT_OWNED)


def trimmed(doc: dict[str, Any], owned: Collection[str]) -> dict[str, Any]:
    """The part of a User's state an import compares: what the source owns, and ``KEPT``."""
    paths = {attribute_path(name) for name in (*owned, *KEPT)}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key.startswith("urn:") and isinstance(value, dict):
            kept = {k: v for k, v in value.items() if f"{key}:{k}" in paths}
            if kept:
                out[key] = kept
        elif key in paths or key == "schemas":
            out[key] = value
    return out


class Importer:
    """One HR source's import, through the gated ``store``."""

    def __init__(
        self, database: Database, store: IdentityStore, source: SourceRow, *, actor: str, chunk: int = CHUNK
    ) -> None:
        self.db = database
        #: Rows written together (``CHUNK``); 1: each alone, through the plain path.
        self.chunk = chunk
        self.store = store
        self.source = source
        self.actor = actor
        self.change_source = f"hr:{source.name}"
        self.repository = SourceRepository(database, store.direct)
        #: Whether a record that matches nobody creates its User once the hire date has come.
        self.joiners = source.config.get("joiners") == "create"
        #: Users whose effective state differs from their source row, as the import's scan found them.
        self.overlaid: set[str] = set()
        #: Department changes this import wrote: each opens a review of the old role's access once effective.
        self.moves: list[tuple[int, Move]] = []  # (the row's line, the move): written in any order

    async def run(
        self,
        path: Path,
        kind: str,
        fmt: RowFormat,
        *,
        dry_run: bool = False,
        today: date | None = None,
        on_row: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import the export at ``path``; ``on_row(bytes read, file size)`` after each row."""
        today = today or utcnow().date()
        policy = await policies.current(self.db)
        owned = owned_attributes(policy.ownership, self.change_source)
        settings = policy.ownership.source(self.source.name)
        index = CorrelationIndex(self.source.config.get("correlate") or CorrelationIndex().keys)
        users = await self._scan(index, owned)
        before = await self.repository.correlated(self.source.id)
        report = ImportReport(dry_run=dry_run)
        seen: dict[str, int] = {}
        employees: dict[str, str] = {}  # employee id -> identity id, as this file correlates them
        pending: list[StoredRecord] = []
        chunks = _Chunks(
            IN_FLIGHT if self.db.dialect == "postgresql" else 1,
            lambda ready: self._write(ready, owned, settings.grace, today, dry_run, report),
            pending,
        )

        export = Export(path, kind, fmt)
        try:
            for row in export.rows():
                report.rows += 1
                try:
                    outcome = await self._row(
                        row, fmt, index, users, before, seen, employees, owned, settings, today, dry_run, report
                    )
                except BadRow as bad:
                    report.rejected.append((row.number, str(bad)))
                else:
                    if isinstance(outcome, _Write):
                        await chunks.add(outcome)
                    elif not dry_run:
                        pending.append(outcome)
                if len(chunks.writes) >= self.chunk:
                    await chunks.flush()
                if len(pending) >= BATCH and not dry_run:
                    ready, pending[:] = list(pending), []
                    await self.repository.store_records(ready)
                if on_row is not None:
                    on_row(export.position, export.size)
        finally:  # a file broken part way: the rows read are written, and the records applied are kept
            try:
                await chunks.flush()
            finally:
                try:
                    await chunks.land(0)
                finally:
                    if not dry_run:
                        await self.repository.store_records(pending)
        report.rejected.sort()
        if not dry_run:
            await self.repository.imported(self.source.id)
            report.reviews = await review_moves(
                self.db,
                self.store,
                [move for _, move in sorted(self.moves, key=lambda m: m[0])],
                actor=self.actor,
                today=today,
            )
        return report

    async def _scan(self, index: CorrelationIndex, owned: list[str]) -> dict[str, bytes]:
        """Every hub User into the correlation index; answers what the import compares of each."""
        # What an import compares, kept serialised: 100,000 Users as dicts would take most of the memory.
        # marshal, not orjson: its bytes are as long as their content (orjson's keep a 4 KiB buffer each),
        # and they never leave this process.
        users: dict[str, bytes] = {}
        async for batch in hub_users(self.store.direct):
            for user in batch:
                index.add(user.id, user.doc)
                users[user.id] = marshal.dumps(trimmed(user.doc, owned))
                if user.overlaid:
                    self.overlaid.add(user.id)
        return users

    async def _write(
        self, ready: list[_Write], owned: list[str], grace: timedelta, today: date, dry_run: bool, report: ImportReport
    ) -> list[StoredRecord]:
        """Write a chunk's rows; answers the records of those written (none in a dry run)."""
        stored: list[StoredRecord] = []
        for write, outcome in zip(ready, await self._written(ready, owned, grace, today, dry_run), strict=True):
            if isinstance(outcome, BadRow):
                report.rejected.append((write.record.line, str(outcome)))
                continue
            report.changed += 1
            if not dry_run:
                stored.append(_stored(self.source.id, write.record, write.identity_id, outcome))
        return stored

    async def _written(
        self, ready: list[_Write], owned: list[str], grace: timedelta, today: date, dry_run: bool
    ) -> list[bool | BadRow | None]:
        """Write a chunk's rows: each one's ``set_active``, or why it was not written."""
        if dry_run or self.chunk <= 1:
            alone: list[bool | BadRow | None] = []
            for write in ready:
                try:
                    alone.append(
                        await self.apply(
                            write.record,
                            write.identity_id,
                            write.values,
                            owned,
                            grace,
                            today,
                            write.set_before,
                            dry_run,
                        )
                    )
                except BadRow as bad:
                    alone.append(bad)
            return alone

        def edit_of(write: _Write) -> Edit:
            def edit(current: StoredIdentity, effective: dict[str, Any] | None) -> dict[str, Any] | None:
                write.proposed, write.problem = None, None
                if effective is None:
                    write.problem = write.record.bad(f"the user {write.identity_id} it matches is gone")
                    return None
                proposal = propose(effective, write.record, write.values, owned, today, grace, write.set_before)
                try:
                    doc = _valid(write.record, proposal.doc, effective)
                except BadRow as bad:
                    write.problem = bad
                    return None
                write.proposed = (effective, doc, proposal.set_active)
                return doc

            return edit

        refused = await self.store.update_many(
            USER_TYPE,
            [(write.identity_id, edit_of(write)) for write in ready],
            source=self.change_source,
            actor=self.actor,
        )
        done: list[bool | BadRow | None] = []
        for write in ready:
            error = refused.get(write.identity_id)
            if write.problem is not None:
                done.append(write.problem)
            elif isinstance(error, NotFound):
                done.append(write.record.bad(f"the user {write.identity_id} it matches is gone"))
            elif error is not None:
                done.append(write.record.bad(error.detail))
            else:
                assert write.proposed is not None
                effective, doc, set_active = write.proposed
                move = move_of(write.identity_id, effective, doc)
                if move is not None:
                    self.moves.append((write.record.line, move))
                done.append(set_active)
        return done

    async def _row(
        self,
        row: Row,
        fmt: RowFormat,
        index: CorrelationIndex,
        users: dict[str, bytes],
        before: dict[str, Correlated],
        seen: dict[str, int],
        employees: dict[str, str],
        owned: list[str],
        settings: SourceSettings,
        today: date,
        dry_run: bool,
        report: ImportReport,
    ) -> StoredRecord | _Write:
        if row.values is None:
            raise BadRow(row.number, row.problem or "cannot be read", row.where)
        record = parse_record(row.number, row.values, fmt, row.where)
        if record.employee_id in seen:
            raise BadRow(
                row.number,
                f"employee_id {record.employee_id!r} is on {row.where} {seen[record.employee_id]} too",
                row.where,
            )
        seen[record.employee_id] = row.number
        previous = before.get(record.employee_id)
        match = index.match(record)
        if match.problem == "missing" and self.joiners and record.status == "active" and record.started(today):
            identity_id, doc = await self.create_joiner(
                record, _manager(record, index, employees, before), today, dry_run
            )
            index.add(identity_id, doc)
            users[identity_id] = marshal.dumps(trimmed(doc, owned))
            employees[record.employee_id] = identity_id
            report.created += 1
            return _stored(self.source.id, record, identity_id, None)
        if match.identity_id is None:
            if match.problem == "ambiguous":
                report.ambiguous += 1
            else:
                report.unmatched += 1
            return _stored(self.source.id, record, None, previous.set_active if previous else None)
        identity_id = match.identity_id
        employees[record.employee_id] = identity_id
        values = dict(record.attributes)
        manager = _manager(record, index, employees, before)
        if manager is not None:
            values["manager"] = manager
        set_before = previous.set_active if previous is not None and previous.identity_id == identity_id else None
        known = marshal.loads(users[identity_id])
        quick = propose(known, record, values, owned, today, settings.grace, set_before)
        if quick.doc == known:
            report.unchanged += 1
            return _stored(self.source.id, record, identity_id, quick.set_active)
        return _Write(record, identity_id, values, set_before)

    async def create_joiner(
        self, record: HrRecord, manager: str | None, today: date, dry_run: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """Create the User a record that matches nobody describes, through the gate."""
        if not record.user_name:
            raise record.bad("matches no user, and a joiner needs a user_name to be created")
        doc = _valid(record, joiner_doc(record, manager, today))
        if dry_run:
            return f"new:{record.employee_id}", doc
        try:
            created = await self.store.create(USER_TYPE, doc, source=self.change_source, actor=self.actor)
        except PolicyDenied as denied:
            raise record.bad(denied.detail) from None
        except ScimError as exc:
            raise record.bad(exc.detail) from None
        return created.id, doc

    async def _current(self, identity_id: str) -> HubUser | None:
        """The User's effective state: its source row unless the scan saw a held change (the rare case)."""
        if identity_id in self.overlaid:
            return await hub_user(self.db, identity_id)
        try:
            stored = await self.store.get(USER_TYPE, identity_id, with_groups=False)
        except NotFound:
            return None
        return HubUser(identity_id, stored.version, stored.doc)

    async def apply(
        self,
        record: HrRecord,
        identity_id: str,
        values: dict[str, Any],
        owned: list[str],
        grace: timedelta,
        today: date,
        set_before: bool | None,
        dry_run: bool = False,
    ) -> bool | None:
        """Write the record's proposal for its User through the gate; once more if the User moved on."""
        for attempt in range(2):
            user = await self._current(identity_id)
            if user is None:
                raise record.bad(f"the user {identity_id} it matches is gone")
            proposal = propose(user.doc, record, values, owned, today, grace, set_before)
            doc = _valid(record, proposal.doc, user.doc)
            if dry_run:
                return proposal.set_active
            try:
                await self.store.put(
                    USER_TYPE,
                    identity_id,
                    doc,
                    if_match=etag(user.version),
                    source=self.change_source,
                    actor=self.actor,
                )
            except PreconditionFailed:
                if attempt:
                    raise record.bad("its user changed twice while it was applied; import again") from None
                continue
            except PolicyDenied as denied:
                raise record.bad(denied.detail) from None
            except ScimError as exc:
                raise record.bad(exc.detail) from None
            move = move_of(identity_id, user.doc, doc)
            if move is not None:
                self.moves.append((record.line, move))
            return proposal.set_active
        return set_before


def joiner_doc(record: HrRecord, manager: str | None, today: date) -> dict[str, Any]:
    """A joiner's first state: everything the record states (nobody else has stated anything yet)."""
    doc: dict[str, Any] = {"schemas": [USER_SCHEMA], "active": True}
    values = dict(record.attributes)
    if manager is not None:
        values["manager"] = manager
    return propose(doc, record, values, [*values, "active"], today, timedelta(0), None).doc


#: What a User's state holds that no source states.
_NOT_STATED = ("id", "meta", "groups")


def _valid(record: HrRecord, doc: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The proposed state as SCIM would take it from a client; a ``BadRow`` if it would not.

    With ``base``, the User's state the proposal was made from (stored as the hub normalized it), only
    what the proposal changes is checked and normalized (with ``userName``, which SCIM requires), and
    the rest is kept as stored: the row's values are what can be wrong, and checking a whole User costs
    more than the rest of a row's work.
    """
    body = {k: v for k, v in doc.items() if k not in _NOT_STATED}
    try:
        if base is None:
            return normalize(body, USER_TYPE)
        kept = {k: v for k, v in base.items() if k not in _NOT_STATED and k != "schemas"}
        changed = [
            k for k in (*body, *(k for k in kept if k not in body)) if k != "schemas" and body.get(k) != kept.get(k)
        ]
        probe = {k: body[k] for k in changed if k in body}
        probe["schemas"] = body.get("schemas")
        if "userName" in body:
            probe.setdefault("userName", body["userName"])
        checked = normalize(probe, USER_TYPE)
    except ScimError as exc:
        raise record.bad(exc.detail) from None
    for key in changed:
        if key in checked:
            kept[key] = checked[key]
        else:
            kept.pop(key, None)
    return {"schemas": [urn for urn in USER_TYPE.schema_ids if urn == USER_SCHEMA or urn in kept], **kept}


def _manager(
    record: HrRecord, index: CorrelationIndex, employees: dict[str, str], before: dict[str, Correlated]
) -> str | None:
    """The manager's hub identity: by employeeNumber, by this file's correlation, or by the last import's."""
    if record.manager_id is None:
        return None
    found = index.employee(record.manager_id) or employees.get(record.manager_id)
    if found is None and record.manager_id in before:
        found = before[record.manager_id].identity_id
    return found


def _stored(source_id: int, record: HrRecord, identity_id: str | None, set_active: bool | None) -> StoredRecord:
    return StoredRecord(
        source_id,
        record.employee_id,
        identity_id,
        record.status,
        record.hire_date,
        record.termination_date,
        record.manager_id,
        record.department,
        record.email,
        record.attributes,
        set_active,
        record.line,
    )


__all__ = ["HubUser", "ImportReport", "Importer", "owned_attributes"]
