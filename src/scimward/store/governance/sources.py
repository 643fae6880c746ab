"""Source rows: the named sources, the source a token belongs to, HR sources' records (issue 17).

Reads for the HR import and the three-way check are here too: the hub's Users with the keys an HR
record correlates by, their effective state, and what each target holds of them (links).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from scimward.scim.errors import InvalidValue, NotFound, UniquenessError
from scimward.store._direct import Direct, decode_json
from scimward.store.database import Database
from scimward.store.governance.changes import dialect_insert
from scimward.store.tables import effective_states, hr_records, identities, links, sources, targets
from scimward.store.timeutil import utcnow

SOURCE_KINDS = ("scim", "csv", "json")
DEFAULT_PRIORITY = 100
_s, _r, _t, _e, _l = sources.c, hr_records.c, identities.c, effective_states.c, links.c


@dataclass(frozen=True)
class SourceRow:
    id: int
    name: str
    kind: str
    priority: int
    config: dict[str, Any]
    created: datetime
    created_by: str
    last_import: datetime | None

    @property
    def is_hr(self) -> bool:
        return self.kind in ("csv", "json")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "priority": self.priority,
            "config": self.config,
            "created": self.created.isoformat() + "Z",
            "created_by": self.created_by,
            "last_import": self.last_import.isoformat() + "Z" if self.last_import else None,
        }


def _source(row: Any) -> SourceRow:
    config = decode_json(row.config) if row.config is not None else {}
    return SourceRow(
        int(row.id), row.name, row.kind, int(row.priority), config or {}, row.created, row.created_by, row.last_import
    )


@dataclass(frozen=True)
class StoredRecord:
    """An HR record as the last import stored it."""

    source_id: int
    employee_id: str
    identity_id: str | None
    status: str
    hire_date: date | None
    termination_date: date | None
    manager_id: str | None
    department: str | None
    email: str | None
    attributes: dict[str, Any]
    set_active: bool | None
    line: int


@dataclass(frozen=True, slots=True)
class Correlated:
    identity_id: str | None
    set_active: bool | None


def _record(row: Any) -> StoredRecord:
    return StoredRecord(
        int(row.source_id),
        row.employee_id,
        row.identity_id,
        row.status,
        row.hire_date,
        row.termination_date,
        row.manager_id,
        row.department,
        row.email,
        decode_json(row.attributes) or {},
        row.set_active,
        int(row.line),
    )


class SourceRepository:
    def __init__(self, database: Database, direct: Direct | None = None) -> None:
        self.db = database
        #: The driver connections ``store_records`` writes on (an import's many records): the identity
        #: store's, when the caller has one; otherwise made when first needed.
        self._direct = direct

    @property
    def direct(self) -> Direct:
        if self._direct is None:
            self._direct = Direct(self.db)
        return self._direct

    async def add(
        self,
        name: str,
        kind: str,
        *,
        priority: int = DEFAULT_PRIORITY,
        created_by: str,
        config: dict[str, Any] | None = None,
    ) -> SourceRow:
        if kind not in SOURCE_KINDS:
            raise InvalidValue(f"a source's kind is {', '.join(SOURCE_KINDS)}, not {kind!r}")
        async with self.db.write() as conn:
            if (await conn.execute(sa.select(_s.id).where(_s.name == name))).first() is not None:
                raise UniquenessError(f"a source named {name!r} exists already")
            await conn.execute(
                sources.insert().values(
                    name=name, kind=kind, priority=priority, config=config, created=utcnow(), created_by=created_by
                )
            )
        return await self.get(name)

    async def update_config(self, name: str, config: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(sources.update().where(_s.name == name).values(config=config))
            if result.rowcount != 1:
                raise NotFound(f"no source named {name!r}")

    async def all(self) -> list[SourceRow]:
        async with self.db.read() as conn:
            return [_source(row) for row in await conn.execute(sa.select(sources).order_by(_s.priority, _s.name))]

    async def get(self, name: str) -> SourceRow:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(sources).where(_s.name == name))).first()
        if row is None:
            raise NotFound(f"no source named {name!r} (scimward source list shows them)")
        return _source(row)

    async def imported(self, source_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(sources.update().where(_s.id == source_id).values(last_import=utcnow()))

    async def check_scim(self, name: str) -> SourceRow:
        """The scim source a token may belong to; ``InvalidValue`` if ``name`` is an HR source."""
        source = await self.get(name)
        if source.kind != "scim":
            raise InvalidValue(f"source {name!r} is a {source.kind} source; a SCIM token belongs to a scim source")
        return source

    # -- HR records -----------------------------------------------------------------------------

    async def records(self, source_id: int | None = None) -> list[StoredRecord]:
        query = sa.select(hr_records).order_by(_r.source_id, _r.employee_id)
        if source_id is not None:
            query = query.where(_r.source_id == source_id)
        async with self.db.read() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def record_counts(self, source_id: int) -> dict[str, int]:
        """What the last imports left of a source: its records, by status, and how many match no User."""
        async with self.db.read() as conn:
            rows = list(
                await conn.execute(
                    sa.select(_r.status, _r.identity_id.is_(None), sa.func.count())
                    .where(_r.source_id == source_id)
                    .group_by(_r.status, _r.identity_id.is_(None))
                )
            )
        counts = {"records": 0, "active": 0, "leave": 0, "terminated": 0, "uncorrelated": 0}
        for status, uncorrelated, count in rows:
            counts["records"] += int(count)
            counts[status] = counts.get(status, 0) + int(count)
            if uncorrelated:
                counts["uncorrelated"] += int(count)
        return counts

    async def correlated(self, source_id: int) -> dict[str, Correlated]:
        """Per employee id, what the last import correlated it with: all an import needs of the old records."""
        async with self.db.read() as conn:
            return {
                row.employee_id: Correlated(row.identity_id, row.set_active)
                for row in await conn.execute(
                    sa.select(_r.employee_id, _r.identity_id, _r.set_active).where(_r.source_id == source_id)
                )
            }

    async def store_records(self, rows: Sequence[StoredRecord]) -> None:
        """Upsert records (one import's batch), each replacing what the source said before: one statement
        by ``executemany`` on the driver (SQLAlchemy's own would cost more than the database's work)."""
        if not rows:
            return
        direct = self.direct
        postgres = direct.postgres

        def day(value: date | None) -> Any:  # SQLAlchemy's Date on SQLite is ISO text
            return value if postgres or value is None else value.isoformat()

        async with direct.transaction() as tx:
            now = tx.time(utcnow())
            await tx.run(
                _upsert_records(self.db.dialect),
                [
                    {
                        "source_id": r.source_id,
                        "employee_id": r.employee_id,
                        "identity_id": r.identity_id,
                        "status": r.status,
                        "hire_date": day(r.hire_date),
                        "termination_date": day(r.termination_date),
                        "manager_id": r.manager_id,
                        "department": r.department,
                        "email": r.email,
                        "attributes": tx.json(r.attributes),
                        "set_active": r.set_active,
                        "line": r.line,
                        "imported": now,
                    }
                    for r in rows
                ],
            )


_RECORD_COLUMNS = (
    "identity_id",
    "status",
    "hire_date",
    "termination_date",
    "manager_id",
    "department",
    "email",
    "attributes",
    "set_active",
    "line",
    "imported",
)


@functools.cache
def _upsert_records(dialect: str) -> Any:
    """An HR record, replacing what its source said of the employee before."""
    insert = dialect_insert(dialect, hr_records).values(
        {name: sa.bindparam(name) for name in ("source_id", "employee_id", *_RECORD_COLUMNS)}
    )
    return insert.on_conflict_do_update(
        index_elements=[_r.source_id, _r.employee_id],
        set_={name: insert.excluded[name] for name in _RECORD_COLUMNS},
    )


# -- reads for correlation and the three-way check ----------------------------------------------


@dataclass(frozen=True)
class HubUser:
    """A hub User as correlation and the three-way check see it: its id, version and effective state."""

    id: str
    version: int
    doc: dict[str, Any]
    #: Whether a held change keeps its effective state apart from its source row.
    overlaid: bool = False


_effective_doc = sa.select(_e.doc).where(_e.identity_id == _t.id).scalar_subquery()
_overlaid = sa.exists().where(_e.identity_id == _t.id)
#: A chunk of Users by keyset, with whether each is overlaid and its effective state if so (``hub_users``).
_HUB_USERS = (
    sa.select(_t.id, _t.version, _t.doc, _overlaid, _effective_doc)
    .where(_t.resource_type == "User", _t.id > sa.bindparam("last"))
    .order_by(_t.id)
    .limit(sa.bindparam("chunk", literal_execute=False))
)


async def hub_users(direct: Direct, chunk: int = 2000) -> AsyncIterator[list[HubUser]]:
    """Every User with its effective state, in chunks by keyset (a held delete keeps none here); on the
    driver, as the identity store reads: an import's scan of 100,000 Users through SQLAlchemy cost more
    than the database's work."""
    last = ""
    while True:
        rows = await direct.fetch(_HUB_USERS, {"last": last, "chunk": chunk})
        if not rows:
            return
        batch: list[HubUser] = []
        for identity_id, version, doc, overlaid, effective in rows:
            if overlaid:
                if effective is None:
                    continue  # a held create: not effective yet
                batch.append(HubUser(identity_id, int(version), decode_json(effective), True))
            else:
                batch.append(HubUser(identity_id, int(version), decode_json(doc), False))
        yield batch
        last = rows[-1][0]


async def hub_user(database: Database, identity_id: str) -> HubUser | None:
    """One User with its effective state; None when it has none."""
    effective = sa.select(_e.doc).where(_e.identity_id == _t.id).scalar_subquery()
    overlaid = sa.exists().where(_e.identity_id == _t.id)
    async with database.read() as conn:
        row = (
            await conn.execute(
                sa.select(_t.version, _t.doc, overlaid.label("overlaid"), effective.label("effective")).where(
                    _t.id == identity_id, _t.resource_type == "User"
                )
            )
        ).first()
    if row is None or (row.overlaid and row.effective is None):
        return None
    return HubUser(
        identity_id, int(row.version), decode_json(row.effective if row.overlaid else row.doc), bool(row.overlaid)
    )


@dataclass(frozen=True)
class Account:
    """A User's account on a target, as the last push or read-back left it."""

    target: str
    target_id: int
    identity_id: str
    remote_id: str
    active: bool


async def accounts(database: Database) -> list[Account]:
    """Every linked User account, with whether it is active there."""
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(targets.c.name, _l.target_id, _l.identity_id, _l.remote_id, _l.state, _l.status)
            .select_from(links.join(targets, targets.c.id == _l.target_id))
            .where(_l.resource_type == "User")
            .order_by(targets.c.name, _l.identity_id)
        )
        found: list[Account] = []
        for row in rows:
            state = decode_json(row.state) if row.state is not None else {}
            active = row.status == "active" and (state or {}).get("active", True) is not False
            found.append(Account(row.name, int(row.target_id), row.identity_id, row.remote_id, active))
        return found
