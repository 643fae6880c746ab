"""An HR record: one row of an export, checked and turned into the SCIM attributes it states.

Without a mapping file these columns are understood (the common shape of Workday, BambooHR and
Personio exports): ``employee_id``, ``user_name``, ``given_name``, ``family_name``, ``email``,
``status`` (``active``, ``leave``, ``terminated``), ``hire_date``, ``termination_date``,
``manager_id``, ``department``, ``title``, ``cost_center``. A mapping file (``mapping.py``) names other
columns, other status words and another date format. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from scimward.errors import ScimwardError

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Status = Literal["active", "leave", "terminated"]
ISO_DATE = "%Y-%m-%d"
#: One @ with something on either side, and no white space: what an HR export's address must at least be.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
STATUSES: tuple[Status, ...] = ("active", "leave", "terminated")

#: The fields of a record, and the SCIM attribute each states ("" for those that are not one).
FIELDS: dict[str, str] = {
    "employee_id": "employeeNumber",
    "user_name": "userName",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "email": "emails",
    "status": "",
    "hire_date": "",
    "termination_date": "",
    "manager_id": "manager",
    "department": "department",
    "title": "title",
    "cost_center": "costCenter",
}
#: SCIM attribute names a mapping may use for a field, beside the field's own name.
ALIASES = {scim: name for name, scim in FIELDS.items() if scim} | {"email": "email", "emails.value": "email"}
#: Further SCIM attributes a mapping may fill: the enterprise extension's, and a few of the core's.
EXTRA_ATTRIBUTES = frozenset(
    {
        "division",
        "organization",
        "displayName",
        "nickName",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "name.middleName",
    }
)


class BadRow(ScimwardError, ValueError):
    """A row scimward cannot use: nothing of it is applied. ``str()`` is ``line N: what is wrong``."""

    def __init__(self, line: int, message: str, where: str = "line") -> None:
        super().__init__(f"{where} {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class HrRecord:
    line: int
    employee_id: str
    status: Status
    user_name: str | None = None
    email: str | None = None
    hire_date: date | None = None
    termination_date: date | None = None
    manager_id: str | None = None
    department: str | None = None
    #: The SCIM attributes the record states, by path (``title``, ``name.givenName``, ``department``).
    attributes: dict[str, Any] = field(default_factory=dict)
    #: How its place in the file is named: ``line`` (CSV, JSON Lines) or ``record`` (a JSON array).
    where: str = "line"

    def bad(self, message: str) -> BadRow:
        return BadRow(self.line, message, self.where)

    def started(self, today: date) -> bool:
        return self.hire_date is None or self.hire_date <= today


@dataclass(frozen=True)
class RowFormat:
    """How an export's rows read: which column holds each field, the status words, the date format."""

    #: column -> field name (``FIELDS``) or SCIM attribute (``EXTRA_ATTRIBUTES``)
    columns: Mapping[str, str] = field(default_factory=lambda: {name: name for name in FIELDS})
    statuses: Mapping[str, Status] = field(default_factory=lambda: {s: s for s in STATUSES})
    date_format: str = ISO_DATE

    @property
    def required(self) -> list[str]:
        """The columns every file must have."""
        return [column for column, name in self.columns.items() if name in ("employee_id", "status")]


def parse_record(line: int, row: Mapping[str, Any], fmt: RowFormat, where: str = "line") -> HrRecord:  # noqa: C901
    """The record a row states, or ``BadRow`` naming the line and the first thing wrong with it."""
    values: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for column, name in fmt.columns.items():
        raw = row.get(column)
        if raw is None:
            continue
        text = str(raw).strip()
        if not text:
            continue
        if name in FIELDS:
            values[name] = text
        else:
            extra[name] = text

    def bad(message: str) -> BadRow:
        return BadRow(line, message, where)

    employee_id = values.get("employee_id")
    if not employee_id:
        raise bad("employee_id is empty")
    if len(employee_id) > 128:
        raise bad("employee_id is longer than 128 characters")
    raw_status = values.get("status", "")
    status = fmt.statuses.get(raw_status) or fmt.statuses.get(raw_status.lower())
    if status is None:
        raise bad(f"status {raw_status!r} is not one of {', '.join(sorted(fmt.statuses))}")

    def day(name: str) -> date | None:
        text = values.get(name)
        if text is None:
            return None
        try:
            if fmt.date_format == ISO_DATE:
                return date.fromisoformat(text) if len(text) == 10 else datetime.strptime(text, ISO_DATE).date()
            return datetime.strptime(text, fmt.date_format).date()
        except ValueError:
            raise bad(f"{name} {text!r} is not a date like {date(2026, 1, 31).strftime(fmt.date_format)}") from None

    hire, termination = day("hire_date"), day("termination_date")
    if status == "terminated" and termination is None:
        raise bad("status terminated needs a termination_date")
    if hire is not None and termination is not None and termination < hire:
        raise bad(f"termination_date {termination.isoformat()} is before hire_date {hire.isoformat()}")
    email = values.get("email")
    if email is not None and not _EMAIL.fullmatch(email):
        raise bad(f"email {email!r} is not an e-mail address")
    manager = values.get("manager_id")
    if manager == employee_id:
        raise bad("manager_id is the employee's own")
    attributes: dict[str, Any] = {"employeeNumber": employee_id}
    for name in ("user_name", "given_name", "family_name", "title", "department", "cost_center"):
        if name in values:
            attributes[FIELDS[name]] = values[name]
    if email is not None:
        attributes["emails"] = email
    attributes.update(extra)
    return HrRecord(
        line,
        employee_id,
        status,
        values.get("user_name"),
        email.lower() if email else None,
        hire,
        termination,
        manager,
        values.get("department"),
        attributes,
        where,
    )
