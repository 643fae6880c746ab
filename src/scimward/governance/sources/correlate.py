"""Correlation: which hub identity an HR record is, by a configurable list of keys, never by a guess.

Keys are tried in order (default ``employeeNumber``, then ``emails``): the first key that finds
anyone decides. One identity is a match; two or more are ambiguous; none under every key is missing.
Ambiguous and missing records are findings (``governance.sources.check``), and nothing is written
for them. Pure: the index is built from the hub's Users by the caller.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scimward.governance.sources.records import ENTERPRISE, HrRecord

KEYS = ("employeeNumber", "emails", "userName")
DEFAULT_KEYS = ("employeeNumber", "emails")


def employee_number(doc: dict[str, Any]) -> str | None:
    extension = doc.get(ENTERPRISE)
    value = extension.get("employeeNumber") if isinstance(extension, dict) else None
    return value if isinstance(value, str) and value else None


def emails(doc: dict[str, Any]) -> list[str]:
    values = doc.get("emails")
    if not isinstance(values, list):
        return []
    return sorted({str(e["value"]).lower() for e in values if isinstance(e, dict) and e.get("value")})


@dataclass(frozen=True)
class Match:
    identity_id: str | None
    problem: Literal["ambiguous", "missing"] | None = None
    key: str | None = None
    candidates: tuple[str, ...] = ()


@dataclass
class CorrelationIndex:
    keys: Sequence[str] = DEFAULT_KEYS
    by_key: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, identity_id: str, doc: dict[str, Any]) -> None:
        for key in self.keys:
            for value in _values(key, doc):
                self.by_key[key].setdefault(value, []).append(identity_id)

    def add_all(self, users: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for identity_id, doc in users:
            self.add(identity_id, doc)

    def employee(self, employee_id: str) -> str | None:
        """The one identity with this employeeNumber, if exactly one has it."""
        found = self.by_key.get("employeeNumber", {}).get(employee_id, [])
        return found[0] if len(found) == 1 else None

    def match(self, record: HrRecord) -> Match:
        for key in self.keys:
            wanted = _record_value(key, record)
            if wanted is None:
                continue
            found = self.by_key.get(key, {}).get(wanted, [])
            if len(found) == 1:
                return Match(found[0], key=key)
            if len(found) > 1:
                return Match(None, "ambiguous", key, tuple(sorted(found)))
        return Match(None, "missing")


def _values(key: str, doc: dict[str, Any]) -> list[str]:
    if key == "employeeNumber":
        number = employee_number(doc)
        return [number] if number else []
    if key == "emails":
        return emails(doc)
    if key == "userName":
        name = doc.get("userName")
        return [str(name).lower()] if name else []
    raise ValueError(f"unknown correlation key {key!r}: use {', '.join(KEYS)}")


def _record_value(key: str, record: HrRecord) -> str | None:
    if key == "employeeNumber":
        return record.employee_id
    if key == "emails":
        return record.email
    if key == "userName":
        return record.user_name.lower() if record.user_name else None
    raise ValueError(f"unknown correlation key {key!r}: use {', '.join(KEYS)}")
