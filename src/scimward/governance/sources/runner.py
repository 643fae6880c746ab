"""The sources' pass: deprovision due terminations through the gate, then the three-way check's findings;
and the schedule that imports HR exports from a path and runs the pass (``scimward serve``).

A termination is applied by the pass even when no new export arrives, and even when the IdP still says
active: the grace is counted from the termination date, so the day it ends the person goes everywhere
(per the policy's ``sources.NAME.on_termination``: ``hold`` makes it wait for approval instead).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import structlog

from scimward.errors import ScimwardError
from scimward.governance.sources.check import Inputs, Person, as_record, authoritative, findings, record
from scimward.governance.sources.correlate import DEFAULT_KEYS, CorrelationIndex
from scimward.governance.sources.importer import Importer, ImportReport, owned_attributes
from scimward.governance.sources.proposal import termination_due
from scimward.governance.sources.readers import load_format
from scimward.governance.sources.records import BadRow
from scimward.policy import policies
from scimward.scim.errors import ScimError
from scimward.scim.resource_types import USER_TYPE
from scimward.store import Direct
from scimward.store.database import Database
from scimward.store.failures import log_round_failure
from scimward.store.governance import SourceRepository, SourceRow, StoredRecord, accounts, hub_users
from scimward.store.identity import IdentityStore
from scimward.store.timeutil import utcnow

log = structlog.get_logger("scimward.governance.sources")

#: Who the schedule's changes are made by.
SCHEDULE_ACTOR = "sources-schedule"


@dataclass
class CheckReport:
    created: int = 0
    deprovisioned: int = 0
    #: ``source:employee id: why`` for terminations the gate refused or could not apply.
    failed: list[str] = field(default_factory=list)
    opened: int = 0
    kept: int = 0
    resolved: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class SourceCheck:
    def __init__(self, database: Database, store: IdentityStore, *, actor: str = SCHEDULE_ACTOR) -> None:
        self.db = database
        self.store = store
        self.actor = actor
        self.repository = SourceRepository(database, store.direct)

    async def run(self, today: date | None = None) -> CheckReport:
        today = today or utcnow().date()
        policy = await policies.current(self.db)
        sources = await self.repository.all()
        records = await self.repository.records()
        people = await _people(self.store.direct)
        report = CheckReport()
        report.created = await self._joiners(sources, records, people, today)
        if report.created:
            records = await self.repository.records()
            people = await _people(self.store.direct)
        inputs = Inputs(sources, records, people, await accounts(self.db), policy.ownership, today)
        for identity_id, (source, stored) in authoritative(inputs).items():
            person = people.get(identity_id)
            grace = policy.ownership.source(source.name).grace
            if person is None or not person.active or not termination_due(as_record(stored), today, grace):
                continue
            importer = Importer(self.db, self.store, source, actor=self.actor)
            owned = owned_attributes(policy.ownership, importer.change_source)
            if "active" not in owned:
                continue  # the policy gives active to another source: HR only reports (a finding)
            if (await self.store.get(USER_TYPE, identity_id, with_groups=False)).doc.get("active") is False:
                continue  # stated already, and held by the gate: asking again would only supersede it
            try:
                await importer.apply(as_record(stored), identity_id, {}, ["active"], grace, today, stored.set_active)
            except (BadRow, ScimError) as exc:
                report.failed.append(f"{source.name}:{stored.employee_id}: {exc}")
                continue
            report.deprovisioned += 1
            await self._remember(stored)
        if report.deprovisioned:  # what the gate made of them: applied, or held (and still active)
            people = await _people(self.store.direct)
            inputs = Inputs(sources, records, people, await accounts(self.db), policy.ownership, today)
        observations = findings(inputs)
        for seen in observations:
            report.by_kind[seen.kind] = report.by_kind.get(seen.kind, 0) + 1
        async with self.db.write() as conn:
            observed = await record(conn, observations)
        report.opened, report.kept, report.resolved = observed.opened, observed.kept, observed.resolved
        return report

    async def _joiners(
        self, sources: Sequence[SourceRow], records: Sequence[StoredRecord], people: Mapping[str, Person], today: date
    ) -> int:
        """Create the Users of joiners whose hire date has come since their record was imported (sources
        that create joiners only); a record that now correlates, or is ambiguous, is left to the check."""
        created = 0
        by_id = {s.id: s for s in sources}
        indexes: dict[int, CorrelationIndex] = {}
        for stored in records:
            source = by_id.get(stored.source_id)
            record = as_record(stored)
            if (
                source is None
                or source.config.get("joiners") != "create"
                or stored.identity_id is not None
                or stored.status != "active"
                or not record.started(today)
            ):
                continue
            index = indexes.get(source.id)
            if index is None:
                index = indexes[source.id] = CorrelationIndex(source.config.get("correlate") or DEFAULT_KEYS)
                index.add_all((p.id, p.doc()) for p in people.values())
            if index.match(record).problem != "missing":
                continue
            manager = next(
                (r.identity_id for r in records if r.source_id == source.id and r.employee_id == stored.manager_id),
                None,
            )
            try:
                identity_id, doc = await Importer(self.db, self.store, source, actor=self.actor).create_joiner(
                    record, manager, today
                )
            except BadRow as bad:
                log.warning("joiner not created", source=source.name, employee_id=stored.employee_id, error=str(bad))
                continue
            index.add(identity_id, doc)
            await self._remember(stored, identity_id=identity_id, set_active=None)
            created += 1
        return created

    async def _remember(
        self, stored: StoredRecord, *, identity_id: str | None = None, set_active: bool | None = False
    ) -> None:
        await self.repository.store_records(
            [
                StoredRecord(
                    stored.source_id,
                    stored.employee_id,
                    identity_id or stored.identity_id,
                    stored.status,
                    stored.hire_date,
                    stored.termination_date,
                    stored.manager_id,
                    stored.department,
                    stored.email,
                    stored.attributes,
                    set_active,
                    stored.line,
                )
            ]
        )


async def _people(direct: Direct) -> dict[str, Person]:
    people: dict[str, Person] = {}
    async for batch in hub_users(direct):
        for user in batch:
            people[user.id] = Person.of(user.id, user.doc)
    return people


def parse_imports(text: str | None) -> dict[str, Path]:
    """``NAME=PATH[,NAME=PATH]`` (the ``source_imports`` setting) as a mapping."""
    out: dict[str, Path] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"source imports are NAME=PATH, comma-separated, not {item.strip()!r}")
        out[name.strip()] = Path(path.strip())
    return out


async def scheduled_round(
    database: Database, store: IdentityStore, imports: Mapping[str, Path], seen: dict[str, float]
) -> tuple[list[ImportReport], CheckReport]:
    """Import each export whose file changed since the last round, then run the pass."""
    reports: list[ImportReport] = []
    repository = SourceRepository(database, store.direct)
    for name, path in imports.items():
        try:
            stamp = path.stat().st_mtime
        except OSError:
            log.warning("source export missing", source=name, path=str(path))
            continue
        if seen.get(name) == stamp:
            continue
        source = await repository.get(name)
        mapping = source.config.get("mapping")
        importer = Importer(database, store, source, actor=SCHEDULE_ACTOR)
        report = await importer.run(path, source.kind, load_format(Path(mapping) if mapping else None))
        seen[name] = stamp
        log.info(
            "source imported", source=name, rows=report.rows, changed=report.changed, rejected=len(report.rejected)
        )
        for line in report.lines:
            log.warning("source row rejected", source=name, row=line)
        reports.append(report)
    check = await SourceCheck(database, store).run()
    if check.deprovisioned or check.failed or check.opened or check.resolved:
        log.info(
            "sources checked",
            deprovisioned=check.deprovisioned,
            failed=len(check.failed),
            opened=check.opened,
            resolved=check.resolved,
        )
    return reports, check


async def run_source_schedule(
    database: Database, store: IdentityStore, imports: Mapping[str, Path], stop: asyncio.Event, *, every_seconds: float
) -> None:
    """Rounds until ``stop`` is set: a loop for ``scimward serve``."""
    seen: dict[str, float] = {}
    while not stop.is_set():
        try:
            await scheduled_round(database, store, imports, seen)
        except ScimwardError as exc:  # expected (an export that cannot be read, a refused change): one line
            log.warning("source schedule round failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the worker loop: logged, and the next round goes on
            log_round_failure(log, "source schedule round failed", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
