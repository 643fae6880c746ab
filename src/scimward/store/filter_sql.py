"""SCIM filters (RFC 7644 3.4.2.2) compiled to SQL, one ``_visit_*`` per AST node.

Attributes promoted to columns (``userName``, ``externalId``, ``displayName``, ``active``, meta dates)
compile to indexed column comparisons; e-mail addresses and group members to ``EXISTS`` over their
child tables; everything else to JSON extraction from the source-state document, with
``json_each`` (SQLite) or ``jsonb_array_elements`` (PostgreSQL) for multi-valued attributes.
Every leaf compiles to a never-NULL boolean so that ``not`` is two-valued, as SCIM expects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from scimward.scim.ast import And, AttrPath, Compare, CompValue, Filter, Not, Or, Present, ValuePath
from scimward.scim.errors import InvalidFilter, InvalidPath, InvalidValue
from scimward.scim.resource import find_attribute
from scimward.scim.schema import Attribute, AttrType, ResourceType
from scimward.store.tables import identities, identity_emails, memberships

Bool = ColumnElement[bool]


@dataclass(frozen=True)
class Operand:
    """Something a comparison can be made against: a SQL expression and its SCIM type."""

    expr: ColumnElement[Any]
    type: AttrType
    case_exact: bool
    lowered: bool = False  # the column already holds the lower-cased value


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _typed_value(operand: Operand, value: CompValue, op: str) -> Any:
    kind = operand.type
    if value is None:
        raise InvalidFilter(f"'{op}' needs a value, not null")
    if kind is AttrType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidFilter(f"a boolean attribute compares with true or false, not {value!r}")
        if op not in {"eq", "ne"}:
            raise InvalidFilter(f"'{op}' is not defined for boolean attributes")
        return value
    if kind in {AttrType.INTEGER, AttrType.DECIMAL}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"a numeric attribute compares with a number, not {value!r}")
        return value
    if not isinstance(value, str):
        raise InvalidFilter(f"a {kind.value} attribute compares with a string, not {value!r}")
    if kind is AttrType.DATETIME:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidFilter(f"not a dateTime: {value!r}") from exc
        return parsed
    return value


def compare(operand: Operand, op: str, value: CompValue) -> Bool:
    """``operand op value`` as SQL, case-folded unless the attribute is caseExact."""
    if op in {"co", "sw", "ew"} and operand.type in {
        AttrType.BOOLEAN, AttrType.INTEGER, AttrType.DECIMAL,
    }:
        raise InvalidFilter(f"'{op}' is only defined for string attributes")
    if value is None and op in {"eq", "ne"}:
        # RFC 7643 2.5: null and unassigned are the same, so ``eq null`` asks "unassigned".
        return sa.not_(present(operand)) if op == "eq" else present(operand)
    typed = _typed_value(operand, value, op)
    expr: ColumnElement[Any] = operand.expr
    if isinstance(typed, str) and not operand.case_exact:
        typed = typed.lower()
        if not operand.lowered:
            expr = sa.func.lower(expr)
    if isinstance(typed, datetime) and operand.type is AttrType.DATETIME:
        typed = _datetime_operand(operand, typed)
    present = operand.expr.is_not(None)
    if op == "ne":
        return sa.or_(operand.expr.is_(None), expr != typed)
    if op in {"co", "sw", "ew"}:
        pattern = _like_escape(str(typed))
        pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op]
        return sa.and_(present, expr.like(pattern, escape="\\"))
    comparison: Callable[[Any], Bool] = {
        "eq": expr.__eq__, "gt": expr.__gt__, "ge": expr.__ge__, "lt": expr.__lt__, "le": expr.__le__,
    }[op]
    return sa.and_(present, comparison(typed))


def _datetime_operand(operand: Operand, value: datetime) -> Any:
    """Columns hold naive UTC datetimes; JSON holds ISO strings normalised to ``...Z``."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    if isinstance(operand.expr.type, sa.DateTime):
        return utc.replace(tzinfo=None)
    text = utc.replace(tzinfo=None).isoformat()
    return text + "Z" if "." not in text else text.rstrip("0").rstrip(".") + "Z"


def present(operand: Operand) -> Bool:
    if operand.type is AttrType.STRING or operand.type is AttrType.REFERENCE:
        return sa.and_(operand.expr.is_not(None), operand.expr != "")
    return operand.expr.is_not(None)


class JsonAccess:
    """Dialect-specific JSON access: scalar extraction and iteration over arrays."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def scalar(self, doc: ColumnElement[Any], keys: tuple[str, ...], kind: AttrType) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            text = doc.op("#>>")(sa.literal("{" + ",".join(f'"{k}"' for k in keys) + "}"))
            if kind is AttrType.BOOLEAN:
                return sa.cast(text, sa.Boolean)
            if kind in {AttrType.INTEGER, AttrType.DECIMAL}:
                return sa.cast(text, sa.Float)
            return sa.cast(text, sa.Text)
        path = "$" + "".join(f'."{k}"' for k in keys)
        extracted = sa.func.json_extract(doc, path)
        if kind is AttrType.BOOLEAN:
            return sa.cast(extracted, sa.Boolean)
        if kind in {AttrType.INTEGER, AttrType.DECIMAL}:
            return sa.cast(extracted, sa.Float)
        return sa.cast(extracted, sa.Text)

    def elements(self, doc: ColumnElement[Any], keys: tuple[str, ...]) -> Any:
        """A FROM clause yielding one row per element of the array at ``keys``, column ``value``."""
        if self.dialect == "postgresql":
            array = doc.op("#>")(sa.literal("{" + ",".join(f'"{k}"' for k in keys) + "}"))
            return sa.func.jsonb_array_elements(array).table_valued("value").alias("element")
        path = "$" + "".join(f'."{k}"' for k in keys)
        return sa.func.json_each(doc, path).table_valued("value").alias("element")


Resolver = Callable[[AttrPath], "Operand | ValueContext"]


@dataclass(frozen=True)
class ValueContext:
    """A multi-valued attribute: filters on it become ``EXISTS`` over its rows or elements."""

    exists: Callable[[Callable[[Resolver], Bool]], Bool]


class FilterCompiler:
    """Compiles filter ASTs for one resource type and one SQL dialect."""

    def __init__(self, rt: ResourceType, dialect: str) -> None:
        self.rt = rt
        self.json = JsonAccess(dialect)

    def compile(self, expr: Filter) -> Bool:
        return self._visit(expr, self._resolve)

    # -- visitors -------------------------------------------------------------------------------

    def _visit(self, expr: Filter, resolve: Resolver) -> Bool:
        if isinstance(expr, And):
            return sa.and_(self._visit(expr.left, resolve), self._visit(expr.right, resolve))
        if isinstance(expr, Or):
            return sa.or_(self._visit(expr.left, resolve), self._visit(expr.right, resolve))
        if isinstance(expr, Not):
            return sa.not_(self._visit(expr.expr, resolve))
        if isinstance(expr, Compare):
            return self._visit_leaf(expr.path, resolve, lambda o: compare(o, expr.op, expr.value))
        if isinstance(expr, Present):
            return self._visit_leaf(expr.path, resolve, present)
        return self._visit_value_path(expr, resolve)

    def _visit_leaf(self, path: AttrPath, resolve: Resolver, test: Callable[[Operand], Bool]) -> Bool:
        target = resolve(path)
        if isinstance(target, Operand):
            return test(target)
        # ``emails.value eq "x"``: some value of the multi-valued attribute matches.
        sub = AttrPath(None, path.sub_attr or "value")
        return target.exists(lambda inner: self._visit_leaf(sub, inner, test))

    def _visit_value_path(self, expr: ValuePath, resolve: Resolver) -> Bool:
        target = resolve(expr.path)
        if isinstance(target, Operand):
            raise InvalidFilter(f"'{expr.path}' is not multi-valued: it cannot take a [filter]")
        return target.exists(lambda inner: self._visit(expr.filter, inner))

    # -- attribute resolution -------------------------------------------------------------------

    def _resolve(self, path: AttrPath) -> Operand | ValueContext:
        try:
            urn, attr, sub = find_attribute(self.rt, path)
        except InvalidPath as exc:
            raise InvalidFilter(exc.detail) from exc
        column = _promoted(self.rt, urn, attr, sub)
        if column is not None:
            return column
        if attr.name == "members" and urn is None:
            return ValueContext(lambda body: _exists_members(body))
        if attr.name == "groups" and urn is None:
            return ValueContext(lambda body: _exists_groups(body))
        if attr.name == "emails" and urn is None:
            return ValueContext(lambda body: _exists_emails(body))
        keys = ((urn,) if urn else ()) + (attr.name,)
        if attr.multi_valued:
            return ValueContext(lambda body: self._exists_elements(keys, attr, body))
        if sub is not None:
            return Operand(self.json.scalar(identities.c.doc, (*keys, sub.name), sub.type), sub.type,
                           sub.case_exact)
        if attr.is_complex:
            raise InvalidFilter(f"'{path}' is complex: filter on one of its sub-attributes")
        return Operand(self.json.scalar(identities.c.doc, keys, attr.type), attr.type, attr.case_exact)

    def _exists_elements(self, keys: tuple[str, ...], attr: Attribute,
                         body: Callable[[Resolver], Bool]) -> Bool:
        element = self.json.elements(identities.c.doc, keys)

        def resolve(path: AttrPath) -> Operand:
            sub = attr.sub(path.attr) if attr.is_complex else None
            if attr.is_complex and sub is None:
                raise InvalidFilter(f"'{attr.name}' has no sub-attribute '{path.attr}'")
            if sub is None:
                value_type = attr.type
                return Operand(self._element_value(element.c.value, (), value_type), value_type, attr.case_exact)
            return Operand(self._element_value(element.c.value, (sub.name,), sub.type), sub.type, sub.case_exact)

        return sa.exists(sa.select(sa.literal(1)).select_from(element).where(body(resolve)))

    def _element_value(self, value: ColumnElement[Any], keys: tuple[str, ...], kind: AttrType) -> Any:
        if self.json.dialect == "postgresql" or keys:
            return self.json.scalar(value, keys, kind)
        return value


def _promoted(rt: ResourceType, urn: str | None, attr: Attribute, sub: Attribute | None) -> Operand | None:
    if urn is not None:
        return None
    t = identities.c
    name = attr.name
    if name == "meta" and sub is not None:
        column = {"created": t.created, "lastModified": t.last_modified, "resourceType": t.resource_type}.get(
            sub.name)
        if column is None:
            raise InvalidFilter(f"meta.{sub.name} cannot be filtered on")
        return Operand(column, sub.type, sub.case_exact)
    if sub is not None:
        return None
    if name == "id":
        return Operand(t.id, attr.type, True)
    if name == "externalId":
        return Operand(t.external_id, attr.type, True)
    if name == "userName":
        return Operand(t.user_name_lower, attr.type, False, lowered=True)
    if name == "displayName":
        return Operand(t.display_name_lower, attr.type, False, lowered=True)
    if name == "active":
        return Operand(t.active, attr.type, True)
    return None


def _exists_emails(body: Callable[[Resolver], Bool]) -> Bool:
    e = identity_emails.alias("email")
    columns: dict[str, Operand] = {
        "value": Operand(e.c.value_lower, AttrType.STRING, False, lowered=True),
        "type": Operand(e.c.type, AttrType.STRING, False),
        "display": Operand(e.c.display, AttrType.STRING, False),
        "primary": Operand(e.c.primary, AttrType.BOOLEAN, True),
    }
    condition = body(lambda path: _sub_column(columns, "emails", path))
    return sa.exists(sa.select(sa.literal(1)).where(e.c.identity_id == identities.c.id, condition))


def _exists_members(body: Callable[[Resolver], Bool]) -> Bool:
    m = memberships.alias("member")
    columns = {
        "value": Operand(m.c.member_id, AttrType.STRING, True),
        "type": Operand(m.c.member_type, AttrType.STRING, False),
    }
    condition = body(lambda path: _sub_column(columns, "members", path))
    return sa.exists(sa.select(sa.literal(1)).where(m.c.group_id == identities.c.id, condition))


def _exists_groups(body: Callable[[Resolver], Bool]) -> Bool:
    m = memberships.alias("membership")
    g = identities.alias("group_")
    columns = {
        "value": Operand(m.c.group_id, AttrType.STRING, True),
        "display": Operand(g.c.display_name_lower, AttrType.STRING, False, lowered=True),
    }
    condition = body(lambda path: _sub_column(columns, "groups", path))
    return sa.exists(
        sa.select(sa.literal(1)).select_from(m.join(g, g.c.id == m.c.group_id))
        .where(m.c.member_id == identities.c.id, condition)
    )


def _sub_column(columns: dict[str, Operand], attr: str, path: AttrPath) -> Operand:
    for name, operand in columns.items():
        if name.lower() == path.attr.lower():
            return operand
    raise InvalidFilter(f"'{attr}.{path.attr}' cannot be filtered on")


def sort_expression(rt: ResourceType, dialect: str, path: AttrPath) -> ColumnElement[Any]:
    """The SQL expression to ``ORDER BY`` for ``sortBy`` (RFC 7644 3.4.2.3)."""
    compiler = FilterCompiler(rt, dialect)
    target = compiler._resolve(path)
    if isinstance(target, ValueContext):
        if path.attr.lower() == "emails" and path.schema is None:
            e = identity_emails.alias("sort_email")
            return (
                sa.select(e.c.value_lower).where(e.c.identity_id == identities.c.id)
                .order_by(e.c.primary.desc(), e.c.position).limit(1).scalar_subquery()
            )
        raise InvalidValue(f"cannot sort by multi-valued attribute '{path}'")
    if target.type is AttrType.STRING and not target.case_exact and not target.lowered:
        return sa.func.lower(target.expr)
    return target.expr



def member_condition(expr: Filter, table: sa.Table) -> Bool:
    """The ``members[...]`` filter of a PATCH remove, as a condition on membership rows."""
    columns = {
        "value": Operand(table.c.member_id, AttrType.STRING, True),
        "type": Operand(table.c.member_type, AttrType.STRING, False),
    }
    compiler = FilterCompiler.__new__(FilterCompiler)
    return compiler._visit(expr, lambda path: _sub_column(columns, "members", path))
