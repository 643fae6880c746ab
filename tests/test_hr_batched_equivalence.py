"""An HR import written in chunks (``IdentityStore.update_many``) leaves the rows the plain path leaves.

The batched apply is an optimisation of the write pipeline's *apply* (DESIGN.md: one write, three
steps; issue 17's speed target). The same two HR exports are imported into two hubs of one dialect
that start alike: once row by row through ``IdentityStore.put`` (``chunk=1``), once in chunks of
three, so that rows fall on both sides of chunk boundaries. The files hold a backfill, joiners (one
created, one still to come), movers, terminations past and within their grace, rows the policy holds
and denies, a row that cannot be read and a row the database refuses (a ``userName`` another User
has: its chunk is applied again row by row). Then everything the imports left is compared: each
User's source and effective state, its change rows, its audit events, its outbox rows, the HR
records, the reviews opened for movers, the reports, and the audit trail's chain.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from scimward.governance.sources import Importer, RowFormat
from scimward.governance.sources.importer import ImportReport, _valid
from scimward.governance.sources.records import BadRow, parse_record
from scimward.policy import PolicyGate, identity_store, policies
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import SourceRepository, verify_trail
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import (
    audit_events,
    changes,
    effective_states,
    hr_records,
    identities,
    identity_emails,
    outbox,
    review_campaigns,
)
from tests.conftest import POSTGRES_URL, migrated_sqlite
from tests.hub import ENTERPRISE

pytestmark = pytest.mark.anyio

POLICY = """
attributes:
  active: hr
  manager: hr
  department: hr
  title: hr
  costCenter: hr
  userName: hr
  emails: hr
sources:
  workday:
    on_termination: deprovision
    grace: 1d
rules:
  - name: directors-are-approved
    when: change.after.title == "Director"
    action: hold
    reason: a director's access is approved
  - name: no-interns
    when: change.after.title == "Intern"
    action: deny
    reason: interns come through the internship programme
breaker: false
"""
HEADER = (
    "employee_id,user_name,given_name,family_name,email,status,hire_date,termination_date,manager_id,"
    "department,title,cost_center\n"
)
TODAY = date.today()
HIRED = (TODAY - timedelta(days=400)).isoformat()
PEOPLE = [f"E{n}" for n in range(1, 11)]


def name(employee: str) -> str:
    return f"{employee.lower()}@example.com"


def row(
    employee: str,
    status: str = "active",
    *,
    user_name: str | None = None,
    hire: str = HIRED,
    terminated: date | None = None,
    manager: str = "E1",
    department: str = "Engineering",
    title: str = "Engineer",
) -> str:
    user = user_name or name(employee)
    return (
        f"{employee},{user},Ada,Lovelace,{user},{status},{hire},{terminated.isoformat() if terminated else ''},"
        f"{manager if employee != 'E1' else ''},{department},{title},CC-1\n"
    )


BACKFILL = (
    HEADER
    + "".join(row(e) for e in PEOPLE[:5])
    + row("E6", title="Director")  # held: its effective state stays, and the next import meets the overlay
    + "".join(row(e) for e in PEOPLE[6:])
    + row("E11")  # a joiner, created
    + row("E12", hire=(TODAY + timedelta(days=30)).isoformat())  # a joiner still to come: unmatched
)
DAY_TWO = (
    HEADER
    + row("E1")
    + row("E2", department="Sales")  # a mover
    + row("E3", department="Finance", title="Analyst")  # a mover
    + row("E4", "terminated", terminated=TODAY - timedelta(days=5))  # past its grace: deprovisioned
    + row("E5", "terminated", terminated=TODAY)  # within its grace: waits
    + row("E6", title="Principal")  # a User whose effective state is held apart
    + row("E7", title="Director")  # held
    + row("E8", title="Intern")  # denied
    + row("E9", hire="31/12/2020")  # cannot be read
    + row("E10", user_name=name("E1"))  # another User's userName: the database refuses it
    + row("E11", title="Staff Engineer")
    + row("E12", hire=(TODAY + timedelta(days=30)).isoformat())
)


def fresh_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated hub database of its own (as ``conftest.hub_url`` makes them)."""
    if dialect == "sqlite":
        yield migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / f"hub-{uuid.uuid4().hex[:6]}.db")
        return
    template = request.getfixturevalue("postgres_template")
    database = f"scimward_hub_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
    try:
        yield sa.make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def twin_url(hub_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second hub database of ``hub_url``'s dialect."""
    yield from fresh_url("postgresql" if hub_url.startswith("postgresql") else "sqlite", request, tmp_path)


async def imported(url: str, tmp_path: Path, chunk: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Both exports imported into a new hub at ``url`` with ``chunk`` rows written together: the
    reports, and everything the imports left (``left``)."""
    db = Database(url)
    try:
        await policies.apply(db, POLICY, "tests")
        await TargetRepository(db).add("app", "https://app.invalid/scim/v2", "x", {})
        sources = SourceRepository(db)
        await sources.add("okta", "scim", created_by="tests")
        await sources.add("workday", "csv", created_by="tests")
        await sources.update_config("workday", {"joiners": "create"})
        store = identity_store(db, PolicyGate(db))
        ids: dict[str, str] = {}
        for employee in PEOPLE:
            body = {
                "schemas": [USER_SCHEMA, ENTERPRISE],
                "userName": name(employee),
                "active": True,
                "emails": [{"value": name(employee), "type": "work", "primary": True}],
                ENTERPRISE: {"employeeNumber": employee},
            }
            ids[employee] = (
                await store.create(USER_TYPE, normalize(body, USER_TYPE), source="scim:okta", actor="okta")
            ).id
        group = {
            "schemas": [GROUP_SCHEMA],
            "displayName": "engineers",
            "members": [{"value": ids["E2"]}, {"value": ids["E3"]}],
        }
        await store.create(GROUP_TYPE, normalize(group, GROUP_TYPE), source="scim:okta", actor="okta")
        reports: list[dict[str, Any]] = []
        for day, text in enumerate((BACKFILL, DAY_TWO)):
            export = tmp_path / f"workday-{chunk}-{day}.csv"
            export.write_text(text)
            source = await sources.get("workday")
            report: ImportReport = await Importer(db, store, source, actor="hr-bot", chunk=chunk).run(
                export, "csv", RowFormat()
            )
            reports.append(report.to_json())
        return reports, await left(db)
    finally:
        await db.dispose()


async def left(db: Database) -> dict[str, Any]:
    """Every row the imports wrote, with identity ids replaced by names (userName, a Group's displayName)
    and times left out (both differ by construction)."""
    t, e, c, a, o = identities.c, identity_emails.c, changes.c, audit_events.c, outbox.c
    statements = {
        "identities": sa.select(
            t.resource_type, t.user_name, t.display_name, t.active, t.doc, t.version, t.source
        ).order_by(t.resource_type, t.user_name, t.display_name),
        "emails": sa.select(e.identity_id, e.position, e.value, e.type, e.primary).order_by(e.identity_id, e.position),
        "effective": sa.select(effective_states.c.identity_id, effective_states.c.doc).order_by(
            effective_states.c.identity_id
        ),
        "changes": sa.select(
            c.identity_id,
            c.op,
            c.status,
            c.source,
            c.actor,
            c.before,
            c.after,
            c.changed,
            c.decision,
            c.rules,
            c.approvals_needed,
            c.held_by_breaker,
            c.expires.is_not(None),
            c.decided.is_not(None),
        ).order_by(c.created, c.id),
        "outbox": sa.select(o.identity_id, o.resource_type, o.generation, o.attempts, o.last_error).order_by(
            o.identity_id
        ),
        "records": sa.select(
            hr_records.c.employee_id,
            hr_records.c.identity_id,
            hr_records.c.status,
            hr_records.c.set_active,
            hr_records.c.line,
            hr_records.c.attributes,
        ).order_by(hr_records.c.employee_id),
        "reviews": sa.select(review_campaigns.c.name, review_campaigns.c.scope).order_by(review_campaigns.c.name),
        "events": sa.select(a.kind, a.actor, a.subject, a.data).order_by(a.time, a.lane, a.seq),
    }
    async with db.read() as conn:
        users = list(await conn.execute(sa.select(t.id, sa.func.coalesce(t.user_name, t.display_name))))
        fetched = {key: [list(r) for r in await conn.execute(statement)] for key, statement in statements.items()}
    text = orjson.dumps(fetched, default=str).decode()
    for identity_id, user_name in users:
        text = text.replace(identity_id, f"<{user_name}>")
    out: dict[str, Any] = orjson.loads(text)
    out["emails"] = sorted(out["emails"], key=lambda r: (r[0], r[1]))
    out["effective"] = sorted(out["effective"], key=lambda r: r[0])
    out["outbox"] = sorted(out["outbox"], key=lambda r: r[0])
    # Each identity's changes in the order they were made; a chunk's writes wait for the chunk, so a
    # joiner created meanwhile may come before them in time, never within one identity.
    out["changes"] = sorted(
        ([*r[:5], _decoded(r[5]), _decoded(r[6]), *r[7:]] for r in out["changes"]), key=lambda r: str(r[0])
    )
    events = [(kind, actor, subject, orjson.loads(data)) for kind, actor, subject, data in out.pop("events")]
    out["event_kinds"] = sorted(Counter(kind for kind, *_ in events).items())
    out["change_events"] = sorted(
        orjson.dumps(
            [subject, actor, data["op"], data["status"], data["decision"], data["changed"], data.get("rules")]
        ).decode()
        for kind, actor, subject, data in events
        if kind == "change"
    )
    trail = await verify_trail(db)
    out["trail"] = [trail.events, trail.broken is None]
    return out


def _decoded(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


async def test_chunks_leave_the_rows_that_row_by_row_leaves(hub_url: str, twin_url: str, tmp_path: Path) -> None:
    plain_reports, plain = await imported(hub_url, tmp_path, chunk=1)
    batched_reports, batched = await imported(twin_url, tmp_path, chunk=3)

    # The files did what they are for, so that the comparison means something.
    assert [r["changed"] for r in plain_reports] == [10, 6]
    assert plain_reports[0]["created"] == 1 and plain_reports[0]["unmatched"] == 1
    assert plain_reports[1]["rejected"] == [
        "line 9: denied by policy: rule 'no-interns': interns come through the internship programme",
        "line 10: hire_date '31/12/2020' is not a date like 2026-01-31",
        plain_reports[1]["rejected"][2],
    ]
    assert plain_reports[1]["rejected"][2].startswith("line 11: ")
    assert len(plain_reports[1]["reviews"]) == 2
    statuses = Counter(change[2] for change in plain["changes"])
    assert (statuses["pending"], statuses["superseded"], statuses["denied"]) == (1, 1, 1)
    assert any(change[1] == "deactivate" and change[2] == "applied" for change in plain["changes"])
    assert plain["effective"] and plain["outbox"] and plain["trail"][1]

    assert batched_reports == plain_reports
    for key in plain:
        assert batched[key] == plain[key], key


def test_checking_what_a_row_changes_gives_what_checking_the_whole_user_gives() -> None:
    """``importer._valid`` with the User's stored state checks only what the proposal changes: the
    result is the document ``normalize`` makes of the whole proposal, and a bad value is still a bad row."""
    stored = normalize(
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "ada@example.com",
            "title": "Engineer",
            "nickName": "ada",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
            ENTERPRISE: {"employeeNumber": "E1", "department": "Sales"},
        },
        USER_TYPE,
    )
    record = parse_record(7, {"employee_id": "E1", "status": "active"}, RowFormat())
    proposals = [
        {**stored, "title": "Director", ENTERPRISE: {**stored[ENTERPRISE], "costCenter": "CC-2"}},
        {k: v for k, v in stored.items() if k != "nickName"},  # an attribute taken away
        {k: v for k, v in stored.items() if k != ENTERPRISE} | {"schemas": [USER_SCHEMA]},
        {**stored, "name": {"givenName": "Ada"}, "active": False},
    ]
    for proposal in proposals:
        assert _valid(record, proposal, stored) == normalize(proposal, USER_TYPE)
    with pytest.raises(BadRow, match=r"^line 7: .*title"):
        _valid(record, {**stored, "title": ["not", "one"]}, stored)
