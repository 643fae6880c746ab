"""The three-way check: HR (what should exist), the hub (what the IdP told it, as effective state) and
each target (what exists, from its links: the last push or read-back).

``findings`` is pure: from the records, the hub's Users and the accounts it gives the observations of
the kinds in ``KINDS``; ``SourceCheck.run`` reads them, first deprovisions through the gate every
person whose termination is due (``deprovision``), then records the observations with ``observe``,
which opens what is new, keeps what is still seen and resolves what is gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from scimward.governance.catalogue import observation
from scimward.governance.sources.correlate import CorrelationIndex, employee_number
from scimward.governance.sources.proposal import termination_due
from scimward.governance.sources.records import ENTERPRISE, HrRecord
from scimward.policy.ownership import Ownership
from scimward.store.governance import Account, Observation, Observed, SourceRow, StoredRecord, observe

KINDS = (
    "terminated_but_active",
    "terminated_but_active_in_app",
    "no_hr_record",
    "hr_mismatch",
    "termination_approaching",
    "hr_record_unmatched",
    "hr_record_ambiguous",
)
#: How far ahead a termination is reported as approaching.
APPROACHING = timedelta(days=14)


@dataclass(frozen=True)
class Person:
    """A hub User as the check compares it."""

    id: str
    user_name: str
    active: bool
    department: str | None
    manager: str | None
    employee_number: str | None
    emails: tuple[str, ...] = ()

    @classmethod
    def of(cls, identity_id: str, doc: Mapping[str, Any]) -> Person:
        found = doc.get(ENTERPRISE)
        extension: Mapping[str, Any] = found if isinstance(found, dict) else {}
        manager = extension.get("manager")
        emails = tuple(str(e.get("value", "")).lower() for e in doc.get("emails") or [] if isinstance(e, dict))
        return cls(
            identity_id,
            str(doc.get("userName") or identity_id),
            doc.get("active", True) is not False,
            extension.get("department"),
            manager.get("value") if isinstance(manager, dict) else None,
            employee_number(dict(doc)),
            emails,
        )

    def doc(self) -> dict[str, Any]:
        """What correlation reads of it."""
        return {
            "userName": self.user_name,
            "emails": [{"value": e} for e in self.emails],
            ENTERPRISE: {"employeeNumber": self.employee_number} if self.employee_number else {},
        }


@dataclass
class Inputs:
    sources: Sequence[SourceRow]
    records: Sequence[StoredRecord]
    people: Mapping[str, Person]
    accounts: Sequence[Account]
    ownership: Ownership
    today: date


def as_record(stored: StoredRecord) -> HrRecord:
    user_name = stored.attributes.get("userName")
    return HrRecord(
        stored.line,
        stored.employee_id,
        stored.status,  # type: ignore[arg-type]
        str(user_name) if user_name else None,
        stored.email,
        stored.hire_date,
        stored.termination_date,
        stored.manager_id,
        stored.department,
        stored.attributes,
    )


def authoritative(inputs: Inputs) -> dict[str, tuple[SourceRow, StoredRecord]]:
    """Per correlated identity, the record of the source with the lowest priority number."""
    by_id = {s.id: s for s in inputs.sources}
    chosen: dict[str, tuple[SourceRow, StoredRecord]] = {}
    for record in inputs.records:
        source = by_id.get(record.source_id)
        if record.identity_id is None or source is None:
            continue
        held = chosen.get(record.identity_id)
        if held is None or (source.priority, source.name) < (held[0].priority, held[0].name):
            chosen[record.identity_id] = (source, record)
    return chosen


def findings(inputs: Inputs) -> list[Observation]:
    out: list[Observation] = []
    by_id = {s.id: s for s in inputs.sources}
    chosen = authoritative(inputs)
    employees = {(r.source_id, r.employee_id): r.identity_id for r in inputs.records if r.identity_id}
    out += _uncorrelated(inputs, by_id)
    for identity_id, (source, stored) in chosen.items():
        person = inputs.people.get(identity_id)
        if person is None:
            continue
        record = as_record(stored)
        grace = inputs.ownership.source(source.name).grace
        subject = person.user_name
        data = {
            "source": source.name,
            "employee_id": stored.employee_id,
            "status": stored.status,
            "termination_date": stored.termination_date.isoformat() if stored.termination_date else None,
        }
        if termination_due(record, inputs.today, grace):
            if person.active:
                out.append(
                    observation(
                        "terminated_but_active",
                        subject,
                        identity_id=identity_id,
                        data=data,
                        detail=f"{source.name} terminated {stored.employee_id} on "
                        f"{data['termination_date']}; the hub still has them active",
                    )
                )
            for account in inputs.accounts:
                if account.identity_id == identity_id and account.active:
                    out.append(
                        observation(
                            "terminated_but_active_in_app",
                            subject,
                            identity_id=identity_id,
                            target_id=account.target_id,
                            data={**data, "remote_id": account.remote_id},
                            detail=f"{source.name} terminated {stored.employee_id}; {account.target} still has "
                            "the account active",
                        )
                    )
            continue
        if (
            stored.status == "terminated"
            and stored.termination_date is not None
            and stored.termination_date - inputs.today <= APPROACHING
        ):
            out.append(
                observation(
                    "termination_approaching",
                    subject,
                    identity_id=identity_id,
                    data=data,
                    detail=f"{source.name} terminates {stored.employee_id} on "
                    f"{data['termination_date']}; access ends {grace} later",
                )
            )
        out += _mismatches(stored, person, employees, source, inputs.people)
    if inputs.sources and any(s.is_hr for s in inputs.sources):
        out += _no_record(inputs, chosen)
    return out


def _uncorrelated(inputs: Inputs, by_id: Mapping[int, SourceRow]) -> list[Observation]:
    """Records stored unmatched, correlated again now (the IdP may have provisioned them since)."""
    out: list[Observation] = []
    indexes: dict[int, CorrelationIndex] = {}
    for stored in inputs.records:
        source = by_id.get(stored.source_id)
        if stored.identity_id is not None or source is None:
            continue
        record = as_record(stored)
        if stored.status == "terminated" or not record.started(inputs.today):
            continue  # a leaver or a joiner still to come: nobody should exist yet, or any more
        index = indexes.get(source.id)
        if index is None:
            index = indexes[source.id] = CorrelationIndex(source.config.get("correlate") or CorrelationIndex().keys)
            index.add_all((p.id, p.doc()) for p in inputs.people.values())
        match = index.match(record)
        subject = f"{source.name}:{stored.employee_id}"
        data = {"source": source.name, "employee_id": stored.employee_id, "email": stored.email, "line": stored.line}
        if match.problem == "ambiguous":
            out.append(
                observation(
                    "hr_record_ambiguous",
                    subject,
                    data={**data, "candidates": list(match.candidates)},
                    detail=f"{match.key} finds {len(match.candidates)} users: {', '.join(match.candidates)}",
                )
            )
        elif match.problem == "missing":
            out.append(
                observation(
                    "hr_record_unmatched",
                    subject,
                    data=data,
                    detail=f"no user has employeeNumber {stored.employee_id}"
                    + (f" or e-mail {stored.email}" if stored.email else ""),
                )
            )
    return out


def _mismatches(
    stored: StoredRecord,
    person: Person,
    employees: Mapping[tuple[int, str], str],
    source: SourceRow,
    people: Mapping[str, Person],
) -> list[Observation]:
    out: list[Observation] = []
    if stored.department and person.department != stored.department:
        out.append(
            observation(
                "hr_mismatch",
                person.user_name,
                attribute="department",
                identity_id=person.id,
                data={"hr": stored.department, "hub": person.department, "source": source.name},
                detail=f"{source.name} says {stored.department!r}, the hub {person.department!r}",
            )
        )
    if stored.manager_id:
        manager = employees.get((stored.source_id, stored.manager_id))
        if manager is not None and person.manager != manager:
            said, held = _name(people, manager), _name(people, person.manager)
            out.append(
                observation(
                    "hr_mismatch",
                    person.user_name,
                    attribute="manager",
                    identity_id=person.id,
                    data={"hr": manager, "hub": person.manager, "source": source.name},
                    detail=f"{source.name} says {said}, the hub {held}",
                )
            )
    return out


def _name(people: Mapping[str, Person], identity_id: str | None) -> str:
    if identity_id is None:
        return "none"
    return people[identity_id].user_name if identity_id in people else identity_id


def _no_record(inputs: Inputs, chosen: Mapping[str, Any]) -> list[Observation]:
    out: list[Observation] = []
    for account in inputs.accounts:
        if not account.active or account.identity_id in chosen:
            continue
        person = inputs.people.get(account.identity_id)
        subject = person.user_name if person is not None else account.identity_id
        out.append(
            observation(
                "no_hr_record",
                subject,
                identity_id=account.identity_id,
                target_id=account.target_id,
                data={"target": account.target, "remote_id": account.remote_id},
                detail=f"{account.target} has an active account no HR source has a record of",
            )
        )
    return out


async def record(conn: Any, observations: Iterable[Observation]) -> Observed:
    """Make the live findings of the check's kinds exactly ``observations`` (in the caller's transaction)."""
    return await observe(conn, KINDS, list(observations))
