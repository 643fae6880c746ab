"""SCIM filters (RFC 7644 3.4.2.2) compiled to SQL, one ``_visit_*`` per AST node.

Attributes promoted to columns (``userName``, ``externalId``, ``displayName``, ``active``, meta dates)
compile to indexed column comparisons; e-mail addresses and group members to ``EXISTS`` over their
child tables; everything else to JSON extraction from the source-state document, with
``json_each`` (SQLite) or ``jsonb_array_elements`` (PostgreSQL) for multi-valued attributes.
Every leaf compiles to a never-NULL boolean so that ``not`` is two-valued, as SCIM expects: a user
without ``title`` matches ``not (title eq "x")``.

A filter on a multi-valued attribute matches when some value matches (RFC 7644 3.4.2.2), except
``ne``, which also matches when the attribute is unassigned, like ``ne`` on a single value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from scimward.scim.ast import And, AttrPath, Compare, CompValue, Filter, Not, Or, Present, ValuePath
from scimward.scim.errors import InvalidFilter, InvalidPath, InvalidValue
from scimward.scim.resource import find_attribute
from scimward.scim.schema import Attribute, AttrType, ResourceType, Returned
from scimward.store.tables import identities, identity_emails, memberships

Bool = ColumnElement[bool]

_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})
_STRINGLIKE = frozenset({AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY})
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_MILLISECOND = timedelta(milliseconds=1)
#: ``schemas`` is no declared attribute, yet RFC 7644 3.4.2.2 filters on it (``schemas eq "urn:..."``).
_SCHEMAS = Attribute("schemas", AttrType.REFERENCE, multi_valued=True)


@dataclass(frozen=True)
class Operand:
    """Something a comparison can be made against: a SQL expression and its SCIM type."""

    expr: ColumnElement[Any]
    type: AttrType
    case_exact: bool
    lowered: bool = False  # the column already holds the lower-cased value
    millis: bool = False  # a server timestamp, rendered truncated to milliseconds (meta dates)


#: Resolves a path inside ``attr[...]`` (or the sub-attribute of ``attr.sub``) to one value's operand.
ElementResolver = Callable[[AttrPath], Operand]


@dataclass(frozen=True)
class ValueContext:
    """A multi-valued attribute: filters on it become ``EXISTS`` over its rows or elements.

    ``first`` gives the operand of a sub-attribute of the primary value, else the first value
    (RFC 7644 3.4.2.3, for sortBy); None when the attribute cannot be sorted by.
    """

    exists: Callable[[Callable[[ElementResolver], Bool]], Bool]
    first: Callable[[AttrPath], Operand] | None = None


Resolver = Callable[[AttrPath], Operand | ValueContext]


# -- leaves ---------------------------------------------------------------------------------------


def compare(operand: Operand, op: str, value: CompValue) -> Bool:
    """``operand op value`` as SQL, case-folded unless the attribute is caseExact.

    ``eq null``/``ne null`` never get here: the visitor turns them into (not) ``pr``.
    """
    typed = _typed_value(operand, op, value)
    expr: ColumnElement[Any] = operand.expr
    if isinstance(typed, str) and not operand.case_exact:
        typed = typed.lower()
        if not operand.lowered:
            expr = sa.func.lower(expr)
    if op == "ne":
        return sa.or_(operand.expr.is_(None), sa.not_(_condition(operand, expr, "eq", typed)))
    return sa.and_(operand.expr.is_not(None), _condition(operand, expr, op, typed))


def present(operand: Operand) -> Bool:
    """``pr``: assigned, and for strings not empty."""
    if operand.type in _STRINGLIKE:
        return sa.and_(operand.expr.is_not(None), operand.expr != "")
    return operand.expr.is_not(None)


def _typed_value(operand: Operand, op: str, value: CompValue) -> Any:
    """The filter's value as the SQL side compares it; InvalidFilter when the comparison is meaningless."""
    kind = operand.type
    if kind is AttrType.COMPLEX:
        raise InvalidFilter(f"a complex attribute cannot be compared with '{op}': name one of its sub-attributes")
    if op in _ORDERING and kind in (AttrType.BOOLEAN, AttrType.BINARY):
        # RFC 7644 3.4.2.2: gt/ge/lt/le on boolean or binary attributes is invalidFilter.
        raise InvalidFilter(f"'{op}' is not defined for {kind.value} attributes")
    if op in _SUBSTRING and kind not in _STRINGLIKE:
        raise InvalidFilter(f"'{op}' is only defined for string attributes, not {kind.value}")
    if value is None:
        raise InvalidFilter(f"'{op}' cannot compare with null")
    if kind is AttrType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidFilter(f"a boolean attribute compares with true or false, not {value!r}")
        return value
    if kind in (AttrType.INTEGER, AttrType.DECIMAL):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"a {kind.value} attribute compares with a number, not {value!r}")
        return value
    if not isinstance(value, str):
        raise InvalidFilter(f"a {kind.value} attribute compares with a string, not {value!r}")
    if kind is AttrType.DATETIME:
        return _datetime_value(operand, value)
    return value


def _datetime_value(operand: Operand, text: str) -> datetime | str:
    """Columns hold naive UTC datetimes; JSON dateTimes on SQLite compare as ``strftime`` text."""
    try:
        parsed = datetime.fromisoformat(text)
        # 0001-01-01T00:00:00+14:00 is a valid dateTime whose UTC instant is before year 1.
        utc = parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except (ValueError, OverflowError) as exc:
        raise InvalidFilter(f"not an xsd:dateTime between years 1 and 9999 in UTC: {text!r}") from exc
    if isinstance(operand.expr.type, sa.DateTime):
        return utc
    return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d}"


def _condition(operand: Operand, expr: ColumnElement[Any], op: str, value: Any) -> Bool:
    """The comparison proper, for an ``expr`` known not to be NULL (so never NULL itself)."""
    if op in _SUBSTRING:
        return _substring(expr, op, value, operand.case_exact)
    if operand.millis:
        return _millis(expr, op, value)
    result: Bool = _OPERATORS[op](expr, value)
    return result


def has_substring_match(expr: Filter) -> bool:
    """Whether ``expr`` holds a ``co`` or ``ew`` comparison: ``LIKE '%x'``, which no btree answers."""
    if isinstance(expr, Compare):
        return expr.op in ("co", "ew")
    if isinstance(expr, And | Or):
        return has_substring_match(expr.left) or has_substring_match(expr.right)
    if isinstance(expr, Not):
        return has_substring_match(expr.expr)
    if isinstance(expr, ValuePath):
        return has_substring_match(expr.filter)
    return False


def _prefix_range(expr: ColumnElement[Any], prefix: str) -> tuple[Bool, ...]:
    """``prefix <= expr < the next prefix``, which every value starting with ``prefix`` satisfies.

    SQLite uses an index for ``LIKE 'x%'`` only on a NOCASE column; a lower-cased column holds no
    ASCII capitals, so ``LIKE`` is a plain prefix test there, and this range (in code point order,
    SQLite's BINARY collation) bounds it to an index range. Nothing when no next prefix is encodable.
    """
    last = ord(prefix[-1]) if prefix else 0x10FFFF
    if last in (0x10FFFF, 0xD7FF):
        return ()
    return expr >= prefix, expr < prefix[:-1] + chr(last + 1)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _substring(expr: ColumnElement[Any], op: str, text: str, case_exact: bool) -> Bool:
    escaped = _like_escape(text)
    pattern = {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]
    like = expr.like(pattern, escape="\\")
    if not case_exact or not text:
        return like
    # SQLite's LIKE ignores ASCII case: re-check caseExact values with functions that never do.
    if op == "co":
        exact = sa.func.replace(expr, text, "") != expr
    elif op == "sw":
        exact = sa.func.substr(expr, 1, len(text)) == text
    else:
        exact = sa.func.substr(expr, sa.func.length(expr) - (len(text) - 1)) == text
    return sa.and_(like, exact)


def _millis(expr: ColumnElement[Any], op: str, value: datetime) -> Bool:
    """Compare a microsecond timestamp as its millisecond rendering: ``meta.created eq`` what GET shows."""
    low = value.replace(microsecond=value.microsecond // 1000 * 1000)
    high = low + _MILLISECOND
    ceiling = low if low == value else high
    if op == "eq":
        return sa.and_(expr >= low, expr < high) if low == value else sa.false()
    bound: Bool = {"gt": expr >= high, "ge": expr >= ceiling, "lt": expr < ceiling, "le": expr < high}[op]
    return bound


# -- JSON -----------------------------------------------------------------------------------------


def _pg_path(keys: tuple[str, ...]) -> ColumnElement[Any]:
    """A ``text[]`` path for PostgreSQL's ``#>``/``#>>`` (a plain string parameter would be VARCHAR)."""
    return sa.literal(list(keys), postgresql.ARRAY(sa.Text))


class JsonAccess:
    """Dialect-specific JSON access: scalar extraction and iteration over arrays."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def scalar(self, doc: ColumnElement[Any], keys: tuple[str, ...], kind: AttrType) -> ColumnElement[Any]:
        """The value at ``keys`` (``()``: ``doc`` itself) as a SQL value of ``kind``, NULL when absent."""
        if self.dialect == "postgresql":
            text = doc.op("#>>")(_pg_path(keys))
            target: Any = {
                AttrType.BOOLEAN: sa.Boolean,
                AttrType.INTEGER: sa.Float,
                AttrType.DECIMAL: sa.Float,
                AttrType.DATETIME: sa.DateTime,
            }.get(kind, sa.Text)
            return sa.cast(text, target)
        extracted = sa.func.json_extract(doc, "$" + "".join(f'."{k}"' for k in keys))
        if kind is AttrType.DATETIME:
            return sa.func.strftime("%Y-%m-%d %H:%M:%f", extracted, type_=sa.String)
        target = {AttrType.BOOLEAN: sa.Boolean, AttrType.INTEGER: sa.Float, AttrType.DECIMAL: sa.Float}.get(
            kind, sa.Text
        )
        return sa.cast(extracted, target)

    def elements(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> tuple[Any, ColumnElement[Any]]:
        """A FROM clause with one row per element of the array at ``keys`` (column ``value``), and
        the element's position in the array."""
        if self.dialect == "postgresql":
            array = doc.op("#>")(_pg_path(keys))
            rows = (
                sa.func.jsonb_array_elements(array)
                .table_valued("value", with_ordinality="position")
                .render_derived("element")
            )
            return rows, rows.c.position
        path = "$" + "".join(f'."{k}"' for k in keys)
        rows = sa.func.json_each(doc, path).table_valued("value", "key").alias("element")
        return rows, rows.c.key

    def element_value(self, value: ColumnElement[Any], keys: tuple[str, ...], kind: AttrType) -> ColumnElement[Any]:
        """A (sub-)value of an array element; SQLite's ``json_each`` already unwraps simple values."""
        if self.dialect == "postgresql" or keys or kind is AttrType.DATETIME:
            return self.scalar(value, keys, kind)
        return value


# -- the compiler ---------------------------------------------------------------------------------


class _Visitor:
    """Compiles filter nodes against whatever a resolver says a path means."""

    #: The SQL dialect, when a comparison's SQL depends on it (None: the same SQL on both).
    dialect: str | None = None

    def _visit(self, expr: Filter, resolve: Resolver) -> Bool:
        if isinstance(expr, And):
            return self._visit_and(expr, resolve)
        if isinstance(expr, Or):
            return self._visit_or(expr, resolve)
        if isinstance(expr, Not):
            return self._visit_not(expr, resolve)
        if isinstance(expr, Compare):
            return self._visit_compare(expr, resolve)
        if isinstance(expr, Present):
            return self._visit_present(expr, resolve)
        return self._visit_value_path(expr, resolve)

    def _visit_and(self, expr: And, resolve: Resolver) -> Bool:
        return sa.and_(self._visit(expr.left, resolve), self._visit(expr.right, resolve))

    def _visit_or(self, expr: Or, resolve: Resolver) -> Bool:
        return sa.or_(self._visit(expr.left, resolve), self._visit(expr.right, resolve))

    def _visit_not(self, expr: Not, resolve: Resolver) -> Bool:
        return sa.not_(self._visit(expr.expr, resolve))

    def _visit_compare(self, expr: Compare, resolve: Resolver) -> Bool:
        if expr.value is None and expr.op in ("eq", "ne"):
            # RFC 7643 2.5: null and unassigned are the same, so ``eq null`` asks "unassigned".
            assigned = self._visit_present(Present(expr.path), resolve)
            return sa.not_(assigned) if expr.op == "eq" else assigned
        target = resolve(expr.path)
        if isinstance(target, Operand):
            compared = compare(target, expr.op, expr.value)
            if self.dialect == "sqlite" and expr.op == "sw" and target.lowered and isinstance(expr.value, str):
                return sa.and_(compared, *_prefix_range(target.expr, expr.value.lower()))
            return compared
        # ``emails.value co "x"`` (or ``emails co "x"``): some value of the attribute matches.
        sub = AttrPath(None, expr.path.sub_attr or "value")
        matched = target.exists(lambda inner: compare(inner(sub), expr.op, expr.value))
        if expr.op != "ne":
            return matched
        return sa.or_(matched, sa.not_(target.exists(lambda inner: present(inner(sub)))))

    def _visit_present(self, expr: Present, resolve: Resolver) -> Bool:
        target = resolve(expr.path)
        if isinstance(target, Operand):
            return present(target)
        if expr.path.sub_attr is None:  # ``emails pr``, ``addresses pr``: has any value at all
            return target.exists(lambda _: sa.true())
        sub = AttrPath(None, expr.path.sub_attr)
        return target.exists(lambda inner: present(inner(sub)))

    def _visit_value_path(self, expr: ValuePath, resolve: Resolver) -> Bool:
        # ``emails[type eq "work" and value co "@corp"]``: ONE value satisfies the whole filter.
        target = resolve(expr.path)
        if isinstance(target, Operand):
            raise InvalidFilter(f"'{expr.path}' is not multi-valued: it cannot take a [filter]")
        return target.exists(lambda inner: self._visit(expr.filter, inner))


class FilterCompiler(_Visitor):
    """Compiles filter ASTs for one resource type and one SQL dialect."""

    def __init__(self, rt: ResourceType, dialect: str) -> None:
        self.rt = rt
        self.dialect = dialect
        self.json = JsonAccess(dialect)

    def compile(self, expr: Filter) -> Bool:
        return self._visit(expr, self._resolve)

    def _resolve(self, path: AttrPath) -> Operand | ValueContext:
        if path.schema is None and path.sub_attr is None and path.attr.lower() == "schemas":
            return self._json_values(("schemas",), _SCHEMAS)
        try:
            urn, attr, sub = find_attribute(self.rt, path)
        except InvalidPath as exc:
            raise InvalidFilter(exc.detail) from exc
        if Returned.NEVER in (attr.returned, sub.returned if sub else None):
            # Filtering on a never-returned attribute (password) would reveal it one guess at a time.
            raise InvalidFilter(f"'{path}' is never returned and cannot be filtered or sorted on")
        column = _promoted(urn, attr, sub, self.rt.key)
        if column is not None:
            return column
        if urn is None and attr.name in _CHILD_ROWS:
            return _CHILD_ROWS[attr.name]()
        keys = ((urn,) if urn else ()) + (attr.name,)
        if attr.multi_valued:
            return self._json_values(keys, attr)
        if sub is None and attr.is_complex and attr.sub("value") is not None and not attr.multi_valued:
            # ``manager eq "id"``: a complex attribute compares by its value, as multi-valued ones do.
            sub = attr.sub("value")
        leaf = sub or attr
        keys += (sub.name,) if sub else ()
        return Operand(self.json.scalar(identities.c.doc, keys, leaf.type), leaf.type, leaf.case_exact)

    def _json_values(self, keys: tuple[str, ...], attr: Attribute) -> ValueContext:
        """A multi-valued attribute held in the JSON document."""
        rows, position = self.json.elements(identities.c.doc, keys)

        def resolve(path: AttrPath) -> Operand:
            if not attr.is_complex:
                if path.attr.lower() != "value":
                    raise InvalidFilter(f"'{attr.name}' holds simple values: filter on 'value', not '{path.attr}'")
                return Operand(self.json.element_value(rows.c.value, (), attr.type), attr.type, attr.case_exact)
            sub = attr.sub(path.attr)
            if sub is None:
                raise InvalidFilter(f"'{attr.name}' has no sub-attribute '{path.attr}'")
            return Operand(self.json.element_value(rows.c.value, (sub.name,), sub.type), sub.type, sub.case_exact)

        def exists(body: Callable[[ElementResolver], Bool]) -> Bool:
            return sa.exists(sa.select(sa.literal(1)).select_from(rows).where(body(resolve)))

        primary = AttrPath(None, "primary") if attr.is_complex and attr.sub("primary") else None

        def first(path: AttrPath) -> Operand:
            operand = resolve(path)
            order = [_primary_first(resolve(primary).expr)] if primary else []
            return _first_of(operand, sa.select(operand.expr).select_from(rows).order_by(*order, position))

        return ValueContext(exists, first)


def _promoted(urn: str | None, attr: Attribute, sub: Attribute | None, key: str | None = "userName") -> Operand | None:
    """The indexed column that holds ``attr`` (``meta.created``...), if any; ``key`` is the resource
    type's natural key (``userName``, an Agent's ``name``), kept lower-cased in ``user_name_lower``."""
    if urn is not None:
        return None
    t = identities.c
    name = attr.name
    if name == "meta" and sub is not None:
        column = {"created": t.created, "lastModified": t.last_modified, "resourceType": t.resource_type}.get(sub.name)
        if column is None:
            raise InvalidFilter(f"meta.{sub.name} cannot be filtered on")
        return Operand(column, sub.type, sub.case_exact, millis=sub.type is AttrType.DATETIME)
    if sub is not None:
        return None
    if name == "id":
        return Operand(t.id, attr.type, True)
    if name == "externalId":
        return Operand(t.external_id, attr.type, True)
    if name == key:
        return Operand(t.user_name_lower, attr.type, False, lowered=True)
    if name == "displayName":
        return Operand(t.display_name_lower, attr.type, False, lowered=True)
    if name == "userType":
        return Operand(t.user_type_lower, attr.type, False, lowered=True)
    if name == "active":
        return Operand(t.active, attr.type, True)
    return None


def _primary_first(primary: ColumnElement[Any]) -> ColumnElement[Any]:
    """Sorts the primary value first on both dialects (PostgreSQL puts NULL first in DESC)."""
    return sa.case((primary.is_(True), 0), else_=1)


def _first_of(operand: Operand, rows: sa.Select[Any]) -> Operand:
    return Operand(rows.limit(1).scalar_subquery(), operand.type, operand.case_exact, operand.lowered)


def _sub_column(columns: dict[str, Operand], attr: str, path: AttrPath) -> Operand:
    operand = columns.get(path.attr.lower())
    if operand is None:
        raise InvalidFilter(f"'{attr}.{path.attr}' cannot be filtered on")
    return operand


def _emails() -> ValueContext:
    e = identity_emails.alias("email")
    columns = {
        "value": Operand(e.c.value_lower, AttrType.STRING, False, lowered=True),
        "type": Operand(e.c.type, AttrType.STRING, False),
        "display": Operand(e.c.display, AttrType.STRING, False),
        "primary": Operand(e.c.primary, AttrType.BOOLEAN, True),
    }

    def resolve(path: AttrPath) -> Operand:
        return _sub_column(columns, "emails", path)

    def first(path: AttrPath) -> Operand:
        operand = resolve(path)
        return _first_of(
            operand,
            sa.select(operand.expr)
            .where(e.c.identity_id == identities.c.id)
            .order_by(_primary_first(e.c.primary), e.c.position),
        )

    return ValueContext(
        lambda body: sa.exists(sa.select(sa.literal(1)).where(e.c.identity_id == identities.c.id, body(resolve))),
        first,
    )


def _members() -> ValueContext:
    m = memberships.alias("member")
    columns = {
        "value": Operand(m.c.member_id, AttrType.STRING, True),
        "type": Operand(m.c.member_type, AttrType.STRING, False),
    }

    def resolve(path: AttrPath) -> Operand:
        return _sub_column(columns, "members", path)

    return ValueContext(
        lambda body: sa.exists(sa.select(sa.literal(1)).where(m.c.group_id == identities.c.id, body(resolve)))
    )


def _groups() -> ValueContext:
    m = memberships.alias("membership")
    g = identities.alias("group_")
    columns = {
        "value": Operand(m.c.group_id, AttrType.STRING, True),
        "display": Operand(g.c.display_name_lower, AttrType.STRING, False, lowered=True),
        "type": Operand(sa.literal("direct"), AttrType.STRING, False),  # no nested groups yet
    }

    def resolve(path: AttrPath) -> Operand:
        return _sub_column(columns, "groups", path)

    return ValueContext(
        lambda body: sa.exists(
            sa.select(sa.literal(1))
            .select_from(m.join(g, g.c.id == m.c.group_id))
            .where(m.c.member_id == identities.c.id, body(resolve))
        )
    )


#: Multi-valued attributes kept as rows of their own rather than in the JSON document.
_CHILD_ROWS: dict[str, Callable[[], ValueContext]] = {"emails": _emails, "members": _members, "groups": _groups}


def sort_expression(rt: ResourceType, dialect: str, path: AttrPath) -> ColumnElement[Any]:
    """The SQL expression to ``ORDER BY`` for ``sortBy`` (RFC 7644 3.4.2.3).

    A multi-valued attribute sorts by its primary value, else its first. Resources without a value
    sort last ascending and first descending: PostgreSQL does so by itself; on SQLite a missing value
    becomes an empty BLOB, which sorts after every number and string.
    """
    target = FilterCompiler(rt, dialect)._resolve(path)
    if isinstance(target, ValueContext):
        if target.first is None:
            raise InvalidValue(f"cannot sort by '{path}'")
        target = target.first(AttrPath(None, path.sub_attr or "value"))
    if target.type is AttrType.COMPLEX:
        raise InvalidValue(f"cannot sort by complex attribute '{path}': name one of its sub-attributes")
    key = target.expr
    if target.type in _STRINGLIKE and not target.case_exact and not target.lowered:
        key = sa.func.lower(key)
    if dialect == "sqlite" and not (isinstance(key, sa.Column) and not key.nullable):
        key = sa.func.coalesce(key, sa.literal_column("x''"))
    return key


def member_condition(expr: Filter, table: sa.Table) -> Bool:
    """The ``members[...]`` filter of a PATCH remove, as a condition on membership rows."""
    columns = {
        "value": Operand(table.c.member_id, AttrType.STRING, True),
        "type": Operand(table.c.member_type, AttrType.STRING, False),
    }
    return _Visitor()._visit(expr, lambda path: _sub_column(columns, "members", path))
