"""The filter and path AST shared by the filter parser, the PATCH engine and the SQL compiler.

RFC 7644 section 3.4.2.2 (filters) and 3.5.2 (PATCH paths). Nodes are immutable so
parsed filters can be cached and shared.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A comparison value as it appears in a filter: JSON string, number, true/false, null.
CompValue = str | int | float | bool | None

#: Comparison operators, always lower case in the AST whatever case the client used.
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


@dataclass(frozen=True)
class AttrPath:
    """``[schemaURN ":"] attr ["." subAttr]``, spelled as the client spelled it.

    ``schema`` is the URN prefix when the client qualified the attribute
    (``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber``), else None.
    Inside a value filter (``emails[type eq "work"]``) ``attr`` names a sub-attribute of the
    bracketed attribute and ``schema``/``sub_attr`` are None.
    """

    schema: str | None
    attr: str
    sub_attr: str | None = None

    def __str__(self) -> str:
        text = f"{self.schema}:{self.attr}" if self.schema else self.attr
        return f"{text}.{self.sub_attr}" if self.sub_attr else text


@dataclass(frozen=True)
class Compare:
    """``attrPath compareOp compValue``; ``op`` is one of COMPARE_OPS."""

    path: AttrPath
    op: str
    value: CompValue


@dataclass(frozen=True)
class Present:
    """``attrPath pr``."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    expr: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attrPath "[" valFilter "]"``: some value of a multi-valued attribute matches ``filter``.

    ``path`` has no sub_attr; paths inside ``filter`` are relative to that attribute.
    """

    path: AttrPath
    filter: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 3.5.2): ``attrPath`` or ``valuePath ["." subAttr]``.

    ``members`` -> PatchPath(AttrPath(None, "members"), None, None)
    ``name.givenName`` -> PatchPath(AttrPath(None, "name", "givenName"), None, None)
    ``emails[type eq "work"].value`` ->
        PatchPath(AttrPath(None, "emails"), Compare(AttrPath(None, "type"), "eq", "work"), "value")
    """

    attr: AttrPath
    filter: Filter | None = None
    sub_attr: str | None = None
