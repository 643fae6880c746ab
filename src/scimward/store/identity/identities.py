"""The identity repository: SCIM resources in SQL, with memberships as rows.

Reads answer with the source state (what a source stated, RFC 7644's view of the resource); writes
go through the policy gate (``store.identity.writer``): a write reads the identity under a lock, checks
``If-Match`` against its version, and commits everything the change writes in one transaction, or
nothing: no lost update, no half-written change. A PATCH of a group's members touches only the
membership rows it names, never the whole group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.ast import AttrPath, Compare, Filter
from scimward.scim.errors import NotFound, ScimError
from scimward.scim.resource_types import GROUPED_TYPES
from scimward.scim.schema import ResourceType
from scimward.store._direct import Direct, Tx
from scimward.store.auth.hub_secrets import hub_secret
from scimward.store.chunks import chunks
from scimward.store.database import Database
from scimward.store.filter_sql import FilterCompiler, has_substring_match, sort_expression
from scimward.store.governance.changes import Gate
from scimward.store.identity import counts, reads
from scimward.store.identity._positions import PositionIndex
from scimward.store.identity.cursor import CursorCodec, Position, query_digest
from scimward.store.identity.identity_rows import StoredIdentity, etag, stored_row
from scimward.store.identity.writer import Edit, Writer
from scimward.store.tables import effective_states, identities

__all__ = ["Edit", "IdentityStore", "SearchQuery", "SearchResult", "StoredIdentity", "etag"]


@dataclass(frozen=True)
class SearchQuery:
    filter: Filter | None = None
    sort_by: AttrPath | None = None
    descending: bool = False
    start_index: int = 1
    count: int | None = None
    with_members: bool = False
    with_groups: bool = False
    #: None: index paging. "" or a cursor this server issued: cursor paging (RFC 9865).
    cursor: str | None = None
    #: False: a cursor page filtered by a substring (``co``, ``ew``) that no index answers (SQLite) is
    #: read without its total, which would read every identity; the page stops at ``count`` rows and
    #: ``SearchResult.counted`` is False. The SCIM endpoint always counts (``totalResults``).
    exact_total: bool = True


@dataclass
class SearchResult:
    total: int
    items: list[StoredIdentity] = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None
    #: False: ``total`` was not counted (``SearchQuery.exact_total``); it is the page's rows alone.
    counted: bool = True


class IdentityStore:
    """Create, read, replace, patch, delete and search identities of any resource type."""

    def __init__(self, database: Database, gate: Gate | None = None) -> None:
        self.db = database
        #: The policy gate every write passes (``policy.gate``); a store without one only reads.
        self.gate = gate
        self._writer: Writer | None = None
        self._compilers: dict[str, FilterCompiler] = {}
        self._codec: CursorCodec | None = None
        self.direct = Direct(database)
        self.positions = PositionIndex()
        #: Called after a change commits: wakes this process's propagate worker (``sync``).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def compiler(self, rt: ResourceType) -> FilterCompiler:
        compiler = self._compilers.get(rt.name)
        if compiler is None:
            compiler = self._compilers[rt.name] = FilterCompiler(rt, self.db.dialect)
        return compiler

    # -- writes: through the gate (``store.identity.writer``) ---------------------------------------------

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            if self.gate is None:
                raise RuntimeError("identity writes go through the policy gate: build the store with a gate")
            self._writer = Writer(self.direct, self.gate, self._changed)
        return self._writer

    async def create(
        self, rt: ResourceType, doc: dict[str, Any], source: str | None = None, actor: str | None = None
    ) -> StoredIdentity:
        return await self.writer.create(rt, doc, source, actor or source)

    async def replace(
        self,
        rt: ResourceType,
        identity_id: str,
        doc: dict[str, Any],
        *,
        if_match: str | None = None,
        source: str | None = None,
        actor: str | None = None,
    ) -> StoredIdentity:
        """PUT (RFC 7644 3.5.1): the document replaces the stored one; members too when given."""
        await self.put(rt, identity_id, doc, if_match=if_match, source=source, actor=actor)
        return await self.get(rt, identity_id)

    async def put(
        self,
        rt: ResourceType,
        identity_id: str,
        doc: dict[str, Any],
        *,
        if_match: str | None = None,
        source: str | None = None,
        actor: str | None = None,
    ) -> None:
        """``replace`` without reading the result back: for callers that write many (an HR import)."""
        await self.writer.update(rt, identity_id, doc=doc, if_match=if_match, source=source, actor=actor or source)

    async def patch(
        self,
        rt: ResourceType,
        identity_id: str,
        body: Any,
        *,
        if_match: str | None = None,
        source: str | None = None,
        actor: str | None = None,
    ) -> StoredIdentity:
        """PATCH (RFC 7644 3.5.2): all operations apply atomically or not at all."""
        stored = await self.writer.update(
            rt, identity_id, body=body, if_match=if_match, source=source, actor=actor or source
        )
        return stored if stored is not None else await self.get(rt, identity_id, with_members=False)

    async def patch_many(
        self, rt: ResourceType, items: Sequence[tuple[str, Any]], *, source: str | None = None, actor: str | None = None
    ) -> dict[str, ScimError]:
        """Several PATCHes, each its own change through the gate, their writes batched
        (``Writer.patch_many``); answers the refused ones by id."""
        return await self.writer.patch_many(rt, items, source=source, actor=actor or source)

    async def update_many(
        self,
        rt: ResourceType,
        items: Sequence[tuple[str, Edit]],
        *,
        source: str | None = None,
        actor: str | None = None,
    ) -> dict[str, ScimError]:
        """Several edits (each from an identity's state as it is locked, its next source state), each its
        own change through the gate, their writes batched (``Writer.update_many``: an HR import's rows);
        answers the refused ones by id."""
        return await self.writer.update_many(rt, items, source=source, actor=actor or source)

    async def delete(
        self,
        rt: ResourceType,
        identity_id: str,
        *,
        if_match: str | None = None,
        source: str | None = None,
        actor: str | None = None,
    ) -> None:
        await self.writer.delete(rt, identity_id, if_match=if_match, source=source, actor=actor or source)

    # -- reads ----------------------------------------------------------------------------------

    async def matches(self, rt: ResourceType, identity_id: str, expr: Filter) -> bool:
        """Whether the identity satisfies the filter (a target's scope), evaluated in SQL."""
        t = identities.c
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.literal(1))
                    .select_from(identities)
                    .where(t.id == identity_id, t.resource_type == rt.name, self.compiler(rt).compile(expr))
                )
            ).first()
        return row is not None

    async def ids(self, rt: ResourceType, expr: Filter | None = None, chunk: int = 1000) -> AsyncIterator[list[str]]:
        """The ids of every identity of a type (matching ``expr``), in chunks, by keyset."""
        t = identities.c
        last = ""
        while True:
            where = [t.resource_type == rt.name, t.id > last]
            if expr is not None:
                where.append(self.compiler(rt).compile(expr))
            async with self.db.read() as conn:
                batch = [
                    row[0] for row in await conn.execute(sa.select(t.id).where(*where).order_by(t.id).limit(chunk))
                ]
            if not batch:
                return
            yield batch
            last = batch[-1]

    async def diverged_ids(self, rt: ResourceType) -> list[str]:
        """Identities of a type whose effective state differs from their source state (held changes):
        a scope over the source state may not tell whether targets should hold them."""
        e = effective_states.c
        async with self.db.read() as conn:
            return [
                row[0]
                for row in await conn.execute(
                    sa.select(e.identity_id).where(e.resource_type == rt.name, e.doc.is_not(None))
                )
            ]

    async def get(
        self, rt: ResourceType, identity_id: str, *, with_members: bool = True, with_groups: bool = True
    ) -> StoredIdentity:
        with_groups = with_groups and rt.name in GROUPED_TYPES
        rows = await self.direct.fetch(
            reads.by_id(self.db.dialect, with_groups), {"identity_id": identity_id, "resource_type": rt.name}
        )
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        stored = stored_row(rt, rows[0], with_groups)
        if rt.name == "Group" and with_members:
            stored.members = [
                {"value": member_id, "type": member_type}
                for member_id, member_type in await self.direct.fetch(reads.MEMBERS_OF_ONE, {"group_id": identity_id})
            ]
        return stored

    async def search(self, rt: ResourceType, query: SearchQuery) -> SearchResult:
        """List resources: by index (RFC 7644 3.4.2.4) or, when ``query.cursor`` is set, by cursor (RFC 9865)."""
        key = _user_name_lookup(rt, query.filter) if query.sort_by is None else None
        if key is not None and not query.cursor:
            # The first page of a key lookup is the whole result, by index or by cursor (RFC 9865:
            # no next cursor): one unique-index statement, what an IdP asks before every create.
            return await self._by_key(rt, query, key)
        if query.cursor is not None:
            t = identities.c
            where: list[sa.ColumnElement[bool]] = [t.resource_type == rt.name]
            if query.filter is not None:
                where.append(self.compiler(rt).compile(query.filter))
            return await self._search_by_cursor(rt, query, where)
        return await self._search_by_index(rt, query)

    async def _search_by_index(self, rt: ResourceType, query: SearchQuery) -> SearchResult:
        """One page by position, every shape of list on one path: the total, the page and its members
        are read in one snapshot (``Direct.snapshot``), so they agree while other processes write.

        The statement is picked by the shape: ``userName eq`` (what an identity provider asks before
        every create) is one unique-index lookup whose rows are their own count; an unfiltered,
        unsorted list counts from ``identity_counts`` and starts a deep page from a position anchor
        (``_positions``); these statements are built once. Any other filter or sort is compiled for the
        request and, on SQLite, run in a worker thread, since no index bounds its cost.
        """
        with_groups = query.with_groups and rt.name in GROUPED_TYPES
        dialect = self.db.dialect
        offset = query.start_index - 1
        user_name = _user_name_lookup(rt, query.filter) if query.sort_by is None else None
        unindexed = user_name is None and (query.filter is not None or query.sort_by is not None)
        if user_name is not None:  # one statement: a snapshot of its own
            return await self._by_key(rt, query, user_name)
        async with self.direct.snapshot(threaded=unindexed) as read:
            if not unindexed:
                total, removed = (await read.rows(counts.TOTAL, {"rt": rt.name}))[0]
                result = SearchResult(int(total))
                if _past_end(query, result.total):
                    return result
                limit = query.count if query.count is not None else result.total
                anchor = await self.positions.anchor(read, rt.name, offset, result.total, int(removed))
                if anchor is None:
                    rows = await read.rows(
                        reads.page(dialect, with_groups), {"resource_type": rt.name, "offset": offset, "limit": limit}
                    )
                else:
                    created, anchor_id, position = anchor
                    rows = await read.rows(
                        reads.page_from(dialect, with_groups),
                        {
                            "resource_type": rt.name,
                            "from_created": read.time(created),
                            "from_id": anchor_id,
                            "offset": offset - position,
                            "limit": limit,
                        },
                    )
            else:
                where = [identities.c.resource_type == rt.name]
                if query.filter is not None:
                    where.append(self.compiler(rt).compile(query.filter))
                counted = await read.rows(
                    sa.select(sa.func.count()).select_from(identities).where(*where), dynamic=True
                )
                result = SearchResult(int(counted[0][0]))
                if _past_end(query, result.total):
                    return result
                order: list[Any] = []
                if query.sort_by is not None:
                    key = sort_expression(rt, dialect, query.sort_by)
                    order.append(key.desc() if query.descending else key.asc())
                order += [identities.c.created, identities.c.id]
                rows = await read.rows(
                    reads.page_of(dialect, with_groups, where, order, offset, query.count), dynamic=True
                )
            result.items = [stored_row(rt, row, with_groups) for row in rows]
            if query.with_members and rt.name == "Group" and result.items:
                await _attach_members(read, dialect, result.items)
        return result

    async def _by_key(self, rt: ResourceType, query: SearchQuery, key: str) -> SearchResult:
        """A list filtered by ``key eq`` (the type's unique natural key): its rows are their own count."""
        with_groups = query.with_groups and rt.name in GROUPED_TYPES
        rows = await self.direct.fetch(
            reads.by_user_name(self.db.dialect, with_groups), {"resource_type": rt.name, "user_name": key.lower()}
        )
        result = SearchResult(len(rows))
        offset = query.start_index - 1
        rows = rows[offset:] if query.count is None else rows[offset : offset + query.count]
        result.items = [stored_row(rt, row, with_groups) for row in rows]
        return result

    async def _count(
        self, conn: AsyncConnection, rt: ResourceType, query: SearchQuery, where: list[sa.ColumnElement[bool]]
    ) -> int:
        if query.filter is None:
            return int((await conn.execute(counts.TOTAL, {"rt": rt.name})).first()[0])  # type: ignore[index]
        return int((await conn.execute(sa.select(sa.func.count()).select_from(identities).where(*where))).scalar_one())

    async def _search_by_cursor(
        self, rt: ResourceType, query: SearchQuery, where: list[sa.ColumnElement[bool]]
    ) -> SearchResult:
        """Keyset paging over (sort value, created, id): stable while resources come and go."""
        t = identities.c
        codec = await self._cursor_codec()
        digest = query_digest(rt.name, repr(query.filter), repr(query.sort_by), query.descending)
        position = codec.decode(digest, query.cursor) if query.cursor else None
        key = sort_expression(rt, self.db.dialect, query.sort_by) if query.sort_by else None
        columns: tuple[sa.ColumnElement[Any], ...] = (t.created, t.id)
        if key is not None:  # missing values sort last ascending, as in index paging
            columns = (key.is_(None), _least_if_null(key), *columns)
        forward = position is None or position.forward
        ascending = forward != query.descending
        page_where = list(where)
        if position is not None:
            keys = sa.tuple_(*_typed_keys(key, position))
            page_where.append(sa.tuple_(*columns) > keys if ascending else sa.tuple_(*columns) < keys)
        count = query.count if query.count is not None else 1000
        counted = query.exact_total or not self._scans_for_substrings(query.filter)
        async with self.db.read() as conn:
            result = SearchResult(await self._count(conn, rt, query, where) if counted else 0, counted=counted)
            if count == 0:
                return result
            with_groups = query.with_groups and rt.name in GROUPED_TYPES
            rows = list(
                await conn.execute(
                    sa.select(
                        *reads.identity_columns(self.db.dialect, with_groups),
                        (key if key is not None else sa.null()).label("sort_key"),
                    )
                    .where(*page_where)
                    .order_by(*(c.asc() if ascending else c.desc() for c in columns))
                    .limit(count + 1)
                )
            )
            more = len(rows) > count
            rows = rows[:count] if forward else rows[:count][::-1]
            result.items = [_stored(rt, r, with_groups) for r in rows]
            if not counted:
                result.total = len(result.items)
            await self._attach(conn, rt, result.items, query.with_members)
        if rows:
            first, last = rows[0], rows[-1]
            if more if forward else True:
                result.next_cursor = codec.encode(digest, Position(True, last.sort_key, last.created, last.id))
            if position is not None and (True if forward else more):
                result.previous_cursor = codec.encode(digest, Position(False, first.sort_key, first.created, first.id))
        return result

    def _scans_for_substrings(self, expr: Filter | None) -> bool:
        """Whether counting ``expr`` reads every identity: a substring match on SQLite, which has no
        index for ``LIKE '%x%'`` (PostgreSQL's trigram indexes, migration 0024, answer it)."""
        return self.db.dialect == "sqlite" and expr is not None and has_substring_match(expr)

    async def _cursor_codec(self) -> CursorCodec:
        if self._codec is None:
            self._codec = CursorCodec(await hub_secret(self.db, "cursor-signing-key"))
        return self._codec

    async def _attach(
        self, conn: AsyncConnection, rt: ResourceType, items: list[StoredIdentity], with_members: bool
    ) -> None:
        """Load the members of Groups in ``items``, in one query per 500 groups."""
        if not items or rt.name != "Group" or not with_members:
            return
        by_id = {item.id: item for item in items}
        for item in items:
            item.members = []
        for chunk in chunks(by_id):
            for row in await conn.execute(reads.MEMBERS_OF, {"group_ids": chunk}):
                by_id[row.group_id].members.append(  # type: ignore[union-attr]
                    {"value": row.member_id, "type": row.member_type}
                )


async def _attach_members(read: Tx, dialect: str, items: list[StoredIdentity]) -> None:
    """Load the members of the Groups in ``items``, in one query per 500 groups."""
    by_id = {item.id: item for item in items}
    for item in items:
        item.members = []
    for chunk in chunks(by_id):
        for group_id, member_id, member_type in await read.rows(
            reads.members_of_many(dialect), {"group_ids": read.ids(chunk)}
        ):
            by_id[group_id].members.append({"value": member_id, "type": member_type})  # type: ignore[union-attr]


def _past_end(query: SearchQuery, total: int) -> bool:
    """Whether the page asked for holds no resource: the answer is the total alone."""
    return query.count == 0 or total < query.start_index


def _user_name_lookup(rt: ResourceType, expr: Filter | None) -> str | None:
    """The key of a plain ``userName eq "..."`` filter, or ``name eq "..."`` for Agents and
    AgenticApplications: the unique, case-insensitive key each resource type keeps indexed."""
    if (
        rt.key is not None
        and isinstance(expr, Compare)
        and expr.op == "eq"
        and isinstance(expr.value, str)
        and expr.path.sub_attr is None
        and expr.path.attr.lower() == rt.key.lower()
        and (expr.path.schema is None or expr.path.schema.lower() == rt.schema.id.lower())
    ):
        return expr.value
    return None


def _stored(rt: ResourceType, row: Any, with_groups: bool = False) -> StoredIdentity:
    stored = StoredIdentity(row.id, rt.name, row.doc, row.created, row.last_modified, row.version)
    if with_groups:
        stored.groups = reads.groups_out(row.groups)
    return stored


def _least_if_null(key: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The sort key with NULL replaced by its type's least value, so row comparisons are total."""
    kind = key.type
    if isinstance(kind, sa.DateTime):
        return sa.func.coalesce(key, sa.literal(datetime(1, 1, 1), sa.DateTime))
    if isinstance(kind, sa.Boolean):
        return sa.func.coalesce(key, sa.false())
    if isinstance(kind, sa.Integer | sa.Float | sa.Numeric):
        return sa.func.coalesce(key, sa.literal(-1e300, sa.Float))
    return sa.func.coalesce(key, sa.literal("", sa.Text))


def _typed_keys(key: sa.ColumnElement[Any] | None, position: Position) -> tuple[Any, ...]:
    tail = (sa.literal(position.created, sa.DateTime), sa.literal(position.id))
    if key is None:
        return tail
    sort_value = position.sort_value
    if sort_value is None:
        return (sa.true(), _least_if_null(sa.literal(None, key.type)), *tail)
    if isinstance(sort_value, bytes):
        return (sa.false(), sa.literal(sort_value, sa.LargeBinary), *tail)
    if isinstance(key.type, sa.DateTime) and isinstance(sort_value, str):
        sort_value = datetime.fromisoformat(sort_value)
    return (sa.false(), sa.literal(sort_value, key.type), *tail)
