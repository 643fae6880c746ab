"""What an HR record proposes for its identity: the attributes the source owns, and ``active``.

``active`` follows the employment status, in the safe direction only:

- terminated, once the grace after the termination date has passed: ``false`` (a leaver);
- a hire date still to come: ``false`` (a pre-hire the IdP provisioned early gets nothing yet);
- active, once the hire date has come: ``true``, but only if this source was the one that set it to
  ``false`` (the pre-hire); an account someone else deactivated stays so;
- on leave, or terminated within the grace: unchanged.

Pure: the importer and the scheduled check hand in the record, today and the effective state.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from scimward.governance.sources.records import ENTERPRISE, HrRecord
from scimward.policy.ownership import ENTERPRISE_ATTRIBUTES, attribute_path

#: What an HR source owns when the policy has no ``attributes:`` section (docs/sources.md).
DEFAULT_OWNED = ("active", "employeeNumber", "manager", "department", "costCenter", "title")


@dataclass(frozen=True)
class Proposal:
    doc: dict[str, Any]
    #: What the record set ``active`` to, to remember (None: it left it alone).
    set_active: bool | None
    terminated: bool


def termination_due(record: HrRecord, today: date, grace: timedelta) -> bool:
    return (
        record.status == "terminated"
        and record.termination_date is not None
        and record.termination_date + grace <= today
    )


def wanted_active(
    record: HrRecord, today: date, grace: timedelta, current: bool, set_before: bool | None
) -> bool | None:
    """What the record says ``active`` should be; None: nothing to say."""
    if termination_due(record, today, grace):
        return False
    if record.status == "terminated":
        return None
    if not record.started(today):
        return False
    if record.status == "active" and not current and set_before is False:
        return True
    return None


def propose(
    doc: dict[str, Any],
    record: HrRecord,
    values: dict[str, Any],
    owned: Collection[str],
    today: date,
    grace: timedelta,
    set_before: bool | None,
) -> Proposal:
    """The identity's next state: ``doc`` (its effective state) with the owned attributes the record
    states (``values``: by attribute name, ``manager`` as the manager's identity id) and ``active``."""
    owned_paths = _paths(tuple(owned))
    out = dict(doc)  # _set copies what it changes inside: ``doc`` is never modified
    for name, value in values.items():
        if attribute_path(name) in owned_paths:
            _set(out, name, value)
    set_active = set_before
    if "active" in owned_paths:
        current = out.get("active", True) is not False
        wanted = wanted_active(record, today, grace, current, set_before)
        if wanted is not None and wanted != current:
            out["active"] = wanted
            set_active = wanted
        elif wanted is None and record.status == "active" and set_before is False and current:
            set_active = None  # someone else activated it: no longer this source's to undo
    return Proposal(out, set_active, termination_due(record, today, grace))


@functools.lru_cache(maxsize=64)
def _paths(owned: tuple[str, ...]) -> frozenset[str]:
    """The paths of what a source owns: the same few for every row of an import."""
    return frozenset(attribute_path(name) for name in owned)


def _set(doc: dict[str, Any], name: str, value: Any) -> None:
    if name in ENTERPRISE_ATTRIBUTES:
        extension = doc[ENTERPRISE] = dict(doc.get(ENTERPRISE) or {})
        if name == "manager":
            same = isinstance(extension.get("manager"), dict) and extension["manager"].get("value") == value
            if not same:
                extension["manager"] = {"value": value}
        else:
            extension[name] = value
        schemas = list(doc.get("schemas") or [])
        if ENTERPRISE not in schemas:
            doc["schemas"] = [*schemas, ENTERPRISE]
    elif name == "emails":
        emails = [dict(e) for e in doc.get("emails") or [] if isinstance(e, dict)]
        primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
        if primary is None:
            emails.append({"value": value, "type": "work", "primary": True})
        else:
            primary["value"] = value
        doc["emails"] = emails
    elif "." in name:
        parent, _, child = name.partition(".")
        complex_value = dict(doc.get(parent) or {})
        complex_value[child] = value
        doc[parent] = complex_value
    else:
        doc[name] = value
