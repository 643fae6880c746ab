"""Attribute characteristics (RFC 7643 section 2.2, 7) declared once, and behaviour derived from them.

A ``Schema`` is a tuple of ``Attribute`` declarations; a ``ResourceType`` binds a core schema and
its extensions to an endpoint. Validation, rendering, PATCH and the ``/Schemas`` discovery document
all read the same declarations, so what the server advertises is what it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AttrType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATETIME = "dateTime"
    BINARY = "binary"
    REFERENCE = "reference"
    COMPLEX = "complex"


class Mutability(StrEnum):
    READ_ONLY = "readOnly"
    READ_WRITE = "readWrite"
    IMMUTABLE = "immutable"
    WRITE_ONLY = "writeOnly"


class Returned(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    DEFAULT = "default"
    REQUEST = "request"


class Uniqueness(StrEnum):
    NONE = "none"
    SERVER = "server"
    GLOBAL = "global"


@dataclass(frozen=True)
class Attribute:
    """One attribute and its characteristics, as RFC 7643 section 7 describes them."""

    name: str
    type: AttrType = AttrType.STRING
    multi_valued: bool = False
    description: str = ""
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = Mutability.READ_WRITE
    returned: Returned = Returned.DEFAULT
    uniqueness: Uniqueness = Uniqueness.NONE
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    #: The most characters a value may have: set where the store keeps it in a column of that size
    #: (``store/tables.py``), so that both dialects refuse the same values (PostgreSQL enforces
    #: ``VARCHAR(n)``, SQLite does not). RFC 7643 has no such characteristic: it is not advertised
    #: in /Schemas but documented in docs/security.md.
    max_length: int | None = None
    _by_lower: dict[str, Attribute] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_lower.update({sub.name.lower(): sub for sub in self.sub_attributes})

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name``; attribute names are case-insensitive (RFC 7643 2.1)."""
        return self._by_lower.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type is AttrType.COMPLEX

    def to_scim(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type is not AttrType.COMPLEX:
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        out["mutability"] = self.mutability.value
        out["returned"] = self.returned.value
        if self.type is not AttrType.COMPLEX:
            out["uniqueness"] = self.uniqueness.value
        if self.sub_attributes:
            out["subAttributes"] = [sub.to_scim() for sub in self.sub_attributes]
        return out


@dataclass(frozen=True)
class Schema:
    """A schema: its URN id, name and attribute declarations."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_lower: dict[str, Attribute] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_lower.update({attr.name.lower(): attr for attr in self.attributes})

    def attribute(self, name: str) -> Attribute | None:
        return self._by_lower.get(name.lower())

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [attr.to_scim() for attr in self.attributes],
            "meta": {"resourceType": "Schema", "location": location},
        }


@dataclass(frozen=True)
class SchemaExtension:
    schema: Schema
    required: bool = False


@dataclass(frozen=True)
class ResourceType:
    """A resource type: name, endpoint, core schema and extensions (RFC 7643 section 6)."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[SchemaExtension, ...] = ()
    #: The core attribute that names a resource uniquely (``userName``, an Agent's ``name``): the store
    #: keeps it in the indexed, unique natural-key column. None when names need not be unique (Group).
    key: str | None = None

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(ext.schema.id for ext in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema whose id is ``urn`` (URNs compare case-insensitively)."""
        lowered = urn.lower()
        for ext in self.extensions:
            if ext.schema.id.lower() == lowered:
                return ext.schema
        return None

    def to_scim(self, location: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "meta": {"resourceType": "ResourceType", "location": location},
        }
        if self.extensions:
            out["schemaExtensions"] = [{"schema": ext.schema.id, "required": ext.required} for ext in self.extensions]
        return out
