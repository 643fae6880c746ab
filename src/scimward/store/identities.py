"""The identity repository: SCIM resources in SQL, with memberships as rows.

A write reads the identity under a lock (its row on PostgreSQL, the database on SQLite), checks
``If-Match`` against its version, and commits everything the request changes in one transaction, or
nothing: no lost update, no half-written change. A PATCH of a group's
members touches only the membership rows it names, never the whole group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.ast import AttrPath, Compare, Filter
from scimward.scim.errors import (
    InvalidValue,
    NotFound,
    PreconditionFailed,
)
from scimward.scim.patch import MemberOp, apply_patch
from scimward.scim.resource import check_immutable, check_required
from scimward.scim.schema import ResourceType
from scimward.store import counts, fused, outbox, reads, writes
from scimward.store.cursor import CursorCodec, Position, query_digest
from scimward.store.database import Database
from scimward.store.direct import Direct, Tx, decode_json, decode_time
from scimward.store.filter_sql import FilterCompiler, member_condition, sort_expression
from scimward.store.hub_secrets import hub_secret
from scimward.store.ids import created_ms, new_id
from scimward.store.passwords import take_password_hash
from scimward.store.positions import PositionIndex
from scimward.store.tables import identities, memberships
from scimward.store.timeutil import utcnow


def etag(version: int) -> str:
    return f'W/"{version}"'


@dataclass
class StoredIdentity:
    """An identity as stored: its source-state document plus what the store keeps beside it."""

    id: str
    resource_type: str
    doc: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int
    members: list[dict[str, str]] | None = None
    groups: list[dict[str, str]] | None = None

    @property
    def etag(self) -> str:
        return etag(self.version)


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


@dataclass
class SearchResult:
    total: int
    items: list[StoredIdentity] = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None


def _columns(tx: Tx | Direct, rt: ResourceType, doc: dict[str, Any]) -> dict[str, Any]:
    user_name = doc.get("userName")
    display_name = doc.get("displayName")
    return {
        "resource_type": rt.name,
        "user_name": user_name,
        "user_name_lower": user_name.lower() if isinstance(user_name, str) else None,
        "external_id": doc.get("externalId"),
        "display_name": display_name,
        "display_name_lower": display_name.lower() if isinstance(display_name, str) else None,
        "active": doc.get("active"),
        "doc": tx.json(doc),
    }


def _email_rows(identity_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for position, email in enumerate(doc.get("emails") or ()):
        value = email.get("value")
        rows.append({
            "identity_id": identity_id, "position": position, "value": value,
            "value_lower": value.lower() if isinstance(value, str) else None,
            "type": email.get("type"), "display": email.get("display"), "primary": email.get("primary"),
        })
    return rows


def _check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7644 3.14: a mismatched If-Match is 412, so no update is lost."""
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" in candidates:
        return
    current = etag(version)
    if current not in candidates and current.removeprefix("W/") not in candidates:
        raise PreconditionFailed(f"resource version is {current}, not {if_match}")


class IdentityStore:
    """Create, read, replace, patch, delete and search identities of any resource type."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._compilers: dict[str, FilterCompiler] = {}
        self._codec: CursorCodec | None = None
        self.direct = Direct(database)
        self.positions = PositionIndex(self.direct)
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

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, rt: ResourceType, doc: dict[str, Any], source: str | None = None) -> StoredIdentity:
        doc = dict(doc)
        members = doc.pop("members", None) or []
        password_hash = await take_password_hash(doc)
        identity_id = new_id()
        now = datetime.fromtimestamp(created_ms(identity_id) / 1000, UTC).replace(tzinfo=None)
        if self.direct.postgres and not members:
            emails = [{k: v for k, v in row.items() if k != "identity_id"} for row in _email_rows(identity_id, doc)]
            await self.direct.fetch(fused.insert_row(), {
                "emails": self.direct.json(emails),
                "id": identity_id, "created": now, "last_modified": now, "version": 1, "source": source,
                "password_hash": password_hash, **_columns(self.direct, rt, doc),
                **counts.params(rt.name, 1),
                "now": now, "now_due": now})
            self._changed()
            return StoredIdentity(identity_id, rt.name, doc, now, now, 1, groups=[] if rt.name == "User" else None,
                                  members=[] if rt.name == "Group" else None)
        async with self.direct.transaction() as tx:
            await tx.run(writes.INSERT_IDENTITY, {
                "id": identity_id, "created": tx.time(now), "last_modified": tx.time(now), "version": 1,
                "source": source, "password_hash": password_hash, **_columns(tx, rt, doc)})
            await tx.run(writes.INSERT_EMAIL, _email_rows(identity_id, doc))
            added = await self._add_members(tx, identity_id, members) if members else []
            await counts.adjust(tx, self.db.dialect, rt.name, 1)
            await outbox.enqueue(tx, self.db.dialect, rt.name, [identity_id])
        self._changed()
        stored = StoredIdentity(identity_id, rt.name, doc, now, now, 1)
        if rt.name == "Group":
            stored.members = [{"value": row["member_id"], "type": row["member_type"]} for row in added]
        elif rt.name == "User":
            stored.groups = []
        return stored

    async def replace(self, rt: ResourceType, identity_id: str, doc: dict[str, Any], *,
                      if_match: str | None = None, source: str | None = None) -> StoredIdentity:
        """PUT (RFC 7644 3.5.1): the document replaces the stored one; members too when given."""
        doc = dict(doc)
        members = doc.pop("members", None) if rt.name == "Group" else None
        # A PUT without a password keeps the one set: a client cannot read it back to resend it.
        password_hash = await take_password_hash(doc)
        async with self.direct.transaction() as tx:
            current = await self._load_for_write(tx, rt, identity_id)
            _check_if_match(if_match, current.version)
            check_immutable(current.doc, doc, rt)
            await self._update(tx, rt, current, doc, source, password_hash)
            if rt.name == "Group":
                ops = [MemberOp("clear"), *([MemberOp("add", tuple(members))] if members else [])]
                await self._apply_member_ops(tx, identity_id, ops)
            await outbox.enqueue(tx, self.db.dialect, rt.name, [identity_id])
        self._changed()
        return await self.get(rt, identity_id)

    async def patch(self, rt: ResourceType, identity_id: str, body: Any, *,
                    if_match: str | None = None, source: str | None = None) -> StoredIdentity:
        """PATCH (RFC 7644 3.5.2): all operations apply atomically or not at all."""
        if self.direct.postgres:
            fast = await self._patch_row_only(rt, identity_id, body, if_match, source)
            if fast is not None:
                return fast
        async with self.direct.transaction() as tx:
            current = await self._load_for_write(tx, rt, identity_id)
            _check_if_match(if_match, current.version)
            result = apply_patch(current.doc, body, rt)
            if not result.changed:
                return current
            check_required(result.doc, rt)
            check_immutable(current.doc, result.doc, rt)
            new_doc = dict(result.doc)
            password_hash = await take_password_hash(new_doc)
            await self._update(tx, rt, current, new_doc, source, password_hash)
            await self._apply_member_ops(tx, identity_id, result.member_ops)
            await outbox.enqueue(tx, self.db.dialect, rt.name, [identity_id])
        self._changed()
        return StoredIdentity(identity_id, rt.name, new_doc, current.created, utcnow(), current.version + 1)

    async def _patch_row_only(self, rt: ResourceType, identity_id: str, body: Any, if_match: str | None,
                              source: str | None) -> StoredIdentity | None:
        """The fused one-statement PATCH (``store.fused``); None when this change needs the locking path."""
        rows = await self.direct.fetch(reads.by_id(self.db.dialect, False),
                                       {"identity_id": identity_id, "resource_type": rt.name})
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        current = _stored_row(rt, rows[0], with_groups=False)
        _check_if_match(if_match, current.version)
        result = apply_patch(current.doc, body, rt)
        if not result.changed:
            return current
        if result.member_ops or "password" in result.doc or result.doc.get("emails") != current.doc.get("emails"):
            return None
        check_required(result.doc, rt)
        check_immutable(current.doc, result.doc, rt)
        now = utcnow()
        updated = await self.direct.fetch(fused.update_row(), {
            "w_id": identity_id, "w_version": current.version, "v_last_modified": now,
            "v_version": current.version + 1, "v_source": source,
            **{f"v_{k}": v for k, v in _columns(self.direct, rt, result.doc).items()},
            "now": now, "now_due": now})
        if updated[0][0] != 1:
            return None  # another writer came first: redo it under the lock
        self._changed()
        return StoredIdentity(identity_id, rt.name, result.doc, current.created, now, current.version + 1)

    async def delete(self, rt: ResourceType, identity_id: str, *, if_match: str | None = None) -> None:
        async with self.direct.transaction() as tx:
            # The groups it leaves change too: their targets must drop the member. Enqueued first,
            # while the memberships are still there (they go with the identity, ON DELETE CASCADE).
            await outbox.enqueue_groups_of(tx, self.db.dialect, identity_id)
            deleted = await tx.rows(writes.DELETE_IDENTITY, {"w_id": identity_id, "resource_type": rt.name})
            if not deleted:
                raise NotFound(f"{rt.name} {identity_id} not found")
            _check_if_match(if_match, deleted[0][0])  # a mismatch rolls the delete back
            await counts.adjust(tx, self.db.dialect, rt.name, -1)
            await outbox.enqueue(tx, self.db.dialect, rt.name, [identity_id])
        self._changed()

    async def _load_for_write(self, tx: Tx, rt: ResourceType, identity_id: str) -> StoredIdentity:
        """Read the identity for a change. From here to commit no other writer can change it: the row
        is locked (``FOR UPDATE`` on PostgreSQL) or the database is (``BEGIN IMMEDIATE`` on SQLite)."""
        rows = await tx.rows(writes.LOAD_FOR_WRITE, {"identity_id": identity_id, "resource_type": rt.name})
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        return _stored_row(rt, rows[0], with_groups=False)

    async def _update(self, tx: Tx, rt: ResourceType, current: StoredIdentity,
                      doc: dict[str, Any], source: str | None, password_hash: str | None = None) -> None:
        values = {f"v_{k}": v for k, v in _columns(tx, rt, doc).items()}
        await tx.run(writes.UPDATE_IDENTITY, {
            "w_id": current.id, "v_last_modified": tx.time(utcnow()),
            "v_version": current.version + 1, "v_source": source, **values})
        if password_hash is not None:
            await tx.run(writes.UPDATE_PASSWORD, {"w_id": current.id, "v_password_hash": password_hash})
        if doc.get("emails") != current.doc.get("emails"):
            await tx.run(writes.DELETE_EMAILS, {"identity_id": current.id})
            await tx.run(writes.INSERT_EMAIL, _email_rows(current.id, doc))

    # -- members --------------------------------------------------------------------------------

    async def _apply_member_ops(self, tx: Tx, group_id: str, ops: Iterable[MemberOp]) -> None:
        for op in ops:
            if op.kind == "clear":
                await tx.run(writes.CLEAR_MEMBERS, {"group_id": group_id})
            elif op.kind == "add":
                await self._add_members(tx, group_id, op.members)
            elif op.kind == "remove":
                ids = [member["value"] for member in op.members]
                await tx.run(writes.remove_members(self.db.dialect), {"group_id": group_id, "ids": tx.ids(ids)})
            elif op.where is not None:
                statement = memberships.delete().where(
                    memberships.c.group_id == sa.bindparam("group_id"), member_condition(op.where, memberships))
                await tx.run(statement, {"group_id": group_id}, dynamic=True)

    async def _add_members(self, tx: Tx, group_id: str, members: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        wanted = _dedupe(members)
        ids = [member["value"] for member in wanted]
        if group_id in ids:
            raise InvalidValue("a group cannot be a member of itself")
        id_list = tx.ids(ids)
        types: dict[str, str] = {row[0]: row[1] for row in
                                 await tx.rows(writes.existing(self.db.dialect), {"ids": id_list})}
        missing = [i for i in ids if i not in types]
        if missing:
            raise InvalidValue(f"member {missing[0]!r} does not exist" if len(missing) == 1
                               else f"{len(missing)} members do not exist, e.g. {missing[0]!r}")
        for member in wanted:
            declared = member.get("type")
            if declared and declared.lower() != types[member["value"]].lower():
                raise InvalidValue(f"member {member['value']!r} is a {types[member['value']]}, not a {declared}")
        await tx.run(writes.add_members(self.db.dialect), {"group_id": group_id, "ids": id_list})
        return [{"group_id": group_id, "member_id": i, "member_type": types[i]} for i in ids]

    # -- reads ----------------------------------------------------------------------------------

    async def matches(self, rt: ResourceType, identity_id: str, expr: Filter) -> bool:
        """Whether the identity satisfies the filter (a target's scope), evaluated in SQL."""
        t = identities.c
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(sa.literal(1)).select_from(identities).where(
                t.id == identity_id, t.resource_type == rt.name, self.compiler(rt).compile(expr)))).first()
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
                batch = [row[0] for row in await conn.execute(
                    sa.select(t.id).where(*where).order_by(t.id).limit(chunk))]
            if not batch:
                return
            yield batch
            last = batch[-1]

    async def get(self, rt: ResourceType, identity_id: str, *, with_members: bool = True,
                  with_groups: bool = True) -> StoredIdentity:
        with_groups = with_groups and rt.name == "User"
        rows = await self.direct.fetch(reads.by_id(self.db.dialect, with_groups),
                                       {"identity_id": identity_id, "resource_type": rt.name})
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        stored = _stored_row(rt, rows[0], with_groups)
        if rt.name == "Group" and with_members:
            stored.members = [{"value": member_id, "type": member_type} for member_id, member_type in
                              await self.direct.fetch(reads.MEMBERS_OF_ONE, {"group_id": identity_id})]
        return stored

    async def search(self, rt: ResourceType, query: SearchQuery) -> SearchResult:
        """List resources: by index (RFC 7644 3.4.2.4) or, when ``query.cursor`` is set, by cursor (RFC 9865)."""
        fast = await self._search_direct(rt, query)
        if fast is not None:
            return fast
        t = identities.c
        where: list[sa.ColumnElement[bool]] = [t.resource_type == rt.name]
        if query.filter is not None:
            where.append(self.compiler(rt).compile(query.filter))
        if query.cursor is not None:
            return await self._search_by_cursor(rt, query, where)
        async with self.db.read() as conn:
            result = SearchResult(await self._count(conn, rt, query, where))
            if query.count == 0 or result.total < query.start_index:
                return result
            order: list[Any] = []
            if query.sort_by is not None:
                key = sort_expression(rt, self.db.dialect, query.sort_by)
                order.append(key.desc() if query.descending else key.asc())
            order += [t.created, t.id]
            # The page's ids first (an index-only scan when unsorted), then only their rows: skipped
            # rows are never read, and groups are aggregated for the page alone.
            page = sa.select(t.id).where(*where).order_by(*order).offset(query.start_index - 1)
            if query.count is not None:
                page = page.limit(query.count)
            page_ids = page.subquery("page")
            with_groups = query.with_groups and rt.name == "User"
            statement = (
                sa.select(*reads.identity_columns(self.db.dialect, with_groups))
                .join(page_ids, page_ids.c.id == t.id).order_by(*order)
            )
            rows = await conn.execute(statement)
            result.items = [_stored(rt, r, with_groups) for r in rows]
            await self._attach(conn, rt, result.items, query.with_members)
        return result

    async def _search_direct(self, rt: ResourceType, query: SearchQuery) -> SearchResult | None:
        """The two list shapes identity providers send most, on the driver; None for any other."""
        with_groups = query.with_groups and rt.name == "User"
        if query.with_members and rt.name == "Group":
            return None
        first_page = query.start_index == 1 and not query.cursor
        user_name = _user_name_lookup(rt, query.filter)
        if user_name is not None and first_page and query.sort_by is None:
            # userName is unique: the page is the whole result, so no count is needed.
            rows = await self.direct.fetch(reads.by_user_name(self.db.dialect, with_groups),
                                           {"resource_type": rt.name, "user_name": user_name.lower()})
            items = [_stored_row(rt, row, with_groups) for row in rows][: query.count]
            return SearchResult(len(rows), items)
        if query.filter is None and query.sort_by is None and query.cursor is None:
            total_rows = await self.direct.fetch(counts.TOTAL, {"rt": rt.name})
            result = SearchResult(int(total_rows[0][0]))
            if query.count == 0 or result.total < query.start_index:
                return result
            offset = query.start_index - 1
            limit = query.count if query.count is not None else result.total
            anchor = await self.positions.anchor(rt.name, offset, int(total_rows[0][1]))
            if anchor is None:
                rows = await self.direct.fetch(reads.page(self.db.dialect, with_groups), {
                    "resource_type": rt.name, "offset": offset, "limit": limit})
            else:
                created, anchor_id, position = anchor
                rows = await self.direct.fetch(reads.page_from(self.db.dialect, with_groups), {
                    "resource_type": rt.name, "from_created": self.direct.time(created), "from_id": anchor_id,
                    "offset": offset - position, "limit": limit})
            result.items = [_stored_row(rt, row, with_groups) for row in rows]
            return result
        return None

    async def _count(self, conn: AsyncConnection, rt: ResourceType, query: SearchQuery,
                     where: list[sa.ColumnElement[bool]]) -> int:
        if query.filter is None:
            return int((await conn.execute(counts.TOTAL, {"rt": rt.name})).first()[0])  # type: ignore[index]
        return int((await conn.execute(sa.select(sa.func.count()).select_from(identities).where(*where))).scalar_one())

    async def _search_by_cursor(self, rt: ResourceType, query: SearchQuery,
                                where: list[sa.ColumnElement[bool]]) -> SearchResult:
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
        async with self.db.read() as conn:
            result = SearchResult(await self._count(conn, rt, query, where))
            if count == 0:
                return result
            with_groups = query.with_groups and rt.name == "User"
            rows = list(await conn.execute(
                sa.select(*reads.identity_columns(self.db.dialect, with_groups),
                          (key if key is not None else sa.null()).label("sort_key"))
                .where(*page_where)
                .order_by(*(c.asc() if ascending else c.desc() for c in columns))
                .limit(count + 1)
            ))
            more = len(rows) > count
            rows = rows[:count] if forward else rows[:count][::-1]
            result.items = [_stored(rt, r, with_groups) for r in rows]
            await self._attach(conn, rt, result.items, query.with_members)
        if rows:
            first, last = rows[0], rows[-1]
            if more if forward else True:
                result.next_cursor = codec.encode(digest, Position(True, last.sort_key, last.created, last.id))
            if position is not None and (True if forward else more):
                result.previous_cursor = codec.encode(digest, Position(False, first.sort_key, first.created, first.id))
        return result

    async def _cursor_codec(self) -> CursorCodec:
        if self._codec is None:
            self._codec = CursorCodec(await hub_secret(self.db, "cursor-signing-key"))
        return self._codec

    async def _attach(self, conn: AsyncConnection, rt: ResourceType, items: list[StoredIdentity],
                      with_members: bool) -> None:
        """Load the members of Groups in ``items``, in one query per 500 groups."""
        if not items or rt.name != "Group" or not with_members:
            return
        by_id = {item.id: item for item in items}
        for item in items:
            item.members = []
        for chunk in _chunks(list(by_id), 500):
            for row in await conn.execute(reads.MEMBERS_OF, {"group_ids": list(chunk)}):
                by_id[row.group_id].members.append(  # type: ignore[union-attr]
                    {"value": row.member_id, "type": row.member_type})


def _user_name_lookup(rt: ResourceType, expr: Filter | None) -> str | None:
    """The userName of a plain ``userName eq "..."`` filter."""
    if (rt.name == "User" and isinstance(expr, Compare) and expr.op == "eq" and isinstance(expr.value, str)
            and expr.path.sub_attr is None and expr.path.attr.lower() == "username"
            and (expr.path.schema is None or expr.path.schema.lower() == rt.schema.id.lower())):
        return expr.value
    return None


def _stored_row(rt: ResourceType, row: Sequence[Any], with_groups: bool) -> StoredIdentity:
    """An identity from a driver row: id, doc, created, last_modified, version[, groups]."""
    stored = StoredIdentity(row[0], rt.name, decode_json(row[1]), decode_time(row[2]), decode_time(row[3]), row[4])
    if with_groups:
        stored.groups = reads.groups_out(decode_json(row[5]))
    return stored


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


def _dedupe(members: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for member in members:
        value = member.get("value")
        if not isinstance(value, str) or not value:
            raise InvalidValue("every member needs a string 'value' with the member's id")
        seen.setdefault(value, member)
    return list(seen.values())


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

