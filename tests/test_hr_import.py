"""HR sources against a real downstream scimward, on both hub dialects (issue 17's "done when").

The IdP's writes go through the hub's gated store with the source its token carries (``scim:okta``);
the HR export is imported by the ``Importer`` the ``scimward import`` command runs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scimward.governance.reviews import Reviews
from scimward.governance.sources import Importer, RowFormat, SourceCheck
from scimward.governance.sources.check import KINDS as CHECK_KINDS
from scimward.policy import Approvals, PolicyGate, identity_store, policies
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import LIVE, SourceRepository, hub_user
from scimward.store.governance import reviews as review_rows
from scimward.store.tables import findings
from scimward.sync.propagate import Propagator
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import TargetConfig
from tests.conftest import Peer
from tests.hub import ENTERPRISE, Hub
from tests.test_propagate import remote_user

pytestmark = pytest.mark.anyio

POLICY = """
attributes:
  active: hr
  manager: hr
  department: hr
  title: hr
  userName: idp
  emails: idp
sources:
  workday:
    on_termination: deprovision
    grace: 1d
"""
HEADER = (
    "employee_id,user_name,given_name,family_name,email,status,hire_date,termination_date,manager_id,"
    "department,title,cost_center\n"
)
TODAY = date.today()


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    db = Database(hub_url)
    await policies.apply(db, POLICY, "tests")
    secrets = SecretBox(key=generate_key())
    propagator = Propagator(db, secrets=secrets, poll_seconds=0.05)
    sources = SourceRepository(db)
    await sources.add("okta", "scim", created_by="tests")
    await sources.add("workday", "csv", created_by="tests")
    yield Hub(db, identity_store(db, PolicyGate(db, refresh_seconds=0)), propagator, secrets)
    await propagator.close()
    await db.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def idp_user(hub: Hub, user_name: str, employee: str, **attributes: Any) -> str:
    """The IdP provisions a User (it states the employee number, as Okta does from its HR profile)."""
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": user_name,
        "active": True,
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": employee},
        **attributes,
    }
    return (await hub.store.create(USER_TYPE, normalize(body, USER_TYPE), source="scim:okta", actor="okta")).id


async def run_import(hub: Hub, path: Path, **kwargs: Any) -> Any:
    source = await SourceRepository(hub.db).get("workday")
    importer = Importer(hub.db, hub.store, source, actor="hr-bot")
    return await importer.run(path, "csv", RowFormat(), **kwargs)


def row(
    employee: str,
    email: str,
    status: str = "active",
    *,
    hire: date | None = None,
    terminated: date | None = None,
    manager: str = "",
    department: str = "Engineering",
    title: str = "Engineer",
) -> str:
    return (
        f"{employee},{email},Ada,Lovelace,{email},{status},{(hire or TODAY - timedelta(days=400)).isoformat()},"
        f"{terminated.isoformat() if terminated else ''},{manager},{department},{title},CC-1\n"
    )


async def test_a_termination_in_hr_deprovisions_downstream_while_the_idp_says_active(
    hub: Hub, downstream: Peer, tmp_path: Path
) -> None:
    await hub.add_target("app", downstream)
    ada_name, bob_name = unique("ada") + "@example.com", unique("bob") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1")
    await idp_user(hub, bob_name, "E2")
    await hub.push()
    assert (await remote_user(downstream, ada_name) or {}).get("active") is True

    export = tmp_path / "workday.csv"
    export.write_text(
        HEADER
        + row("E1", ada_name, "terminated", terminated=TODAY - timedelta(days=3))
        + row("E2", bob_name, manager="E1")
    )
    report = await run_import(hub, export)
    assert report.ok and report.changed == 2 and report.rows == 2
    await hub.push()
    account = await remote_user(downstream, ada_name)
    assert account is None or account["active"] is False
    bob = await remote_user(downstream, bob_name)
    assert bob is not None and bob["active"] is True and bob.get("title") == "Engineer"

    # The IdP lags: it still says active, and changes the e-mail it owns in the same PUT.
    stored = await hub.store.get(USER_TYPE, ada)
    lagging = {k: v for k, v in stored.doc.items() if k not in ("id", "meta", "groups")}
    lagging["active"] = True
    await hub.store.replace(USER_TYPE, ada, normalize(lagging, USER_TYPE), source="scim:okta", actor="okta")
    await hub.push()
    account = await remote_user(downstream, ada_name)
    assert account is None or account["active"] is False
    effective = await hub_user(hub.db, ada)
    assert effective is not None and effective.doc["active"] is False
    pending = await Approvals(hub.db, hub.store.direct).changes(status="pending", identity_id=ada)
    assert [c.reasons for c in pending] == [["attributes: scim:okta does not own active (owned by hr)"]]


async def test_a_termination_within_its_grace_waits_and_is_not_applied(hub: Hub, tmp_path: Path) -> None:
    ada_name = unique("ada") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1")
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, "terminated", terminated=TODAY))
    report = await run_import(hub, export)
    assert report.ok
    assert (await hub_user(hub.db, ada)).doc["active"] is True  # type: ignore[union-attr]
    later = await run_import(hub, export, today=TODAY + timedelta(days=1))
    assert later.changed == 1
    assert (await hub_user(hub.db, ada)).doc["active"] is False  # type: ignore[union-attr]


async def test_a_bad_row_is_rejected_by_its_line_and_nothing_of_it_is_applied(hub: Hub, tmp_path: Path) -> None:
    names = [unique(n) + "@example.com" for n in ("ada", "bob", "cy")]
    ids = [await idp_user(hub, name, f"E{n}") for n, name in enumerate(names)]
    export = tmp_path / "workday.csv"
    bad = row("E1", names[1], title="Director").replace(f"{(TODAY - timedelta(days=400)).isoformat()}", "31/12/2020")
    export.write_text(HEADER + row("E0", names[0], title="Architect") + bad + row("E2", names[2], title="Chef"))
    report = await run_import(hub, export)
    assert not report.ok
    assert report.lines == ["line 3: hire_date '31/12/2020' is not a date like 2026-01-31"]
    titles = [(await hub.store.get(USER_TYPE, i)).doc.get("title") for i in ids]
    assert titles == ["Architect", None, "Chef"]
    records = {r.employee_id for r in await SourceRepository(hub.db).records()}
    assert records == {"E0", "E2"}


async def test_a_dry_run_writes_nothing(hub: Hub, tmp_path: Path) -> None:
    ada_name = unique("ada") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1")
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, title="Architect"))
    report = await run_import(hub, export, dry_run=True)
    assert report.changed == 1
    assert (await hub.store.get(USER_TYPE, ada)).doc.get("title") is None
    assert await SourceRepository(hub.db).records() == []


async def test_records_that_match_nobody_or_two_users_are_not_guessed(hub: Hub, tmp_path: Path) -> None:
    ada_name = unique("ada") + "@example.com"
    await idp_user(hub, ada_name, "E1")
    await idp_user(hub, unique("ada2") + "@example.com", "E1")
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, title="Architect") + row("E9", "nobody@example.com"))
    report = await run_import(hub, export)
    assert (report.ambiguous, report.unmatched, report.changed) == (1, 1, 0)
    stored = {r.employee_id: r.identity_id for r in await SourceRepository(hub.db).records()}
    assert stored == {"E1": None, "E9": None}


async def live_findings(hub: Hub) -> set[tuple[str, str, str, int | None]]:
    async with hub.db.read() as conn:
        rows = await conn.execute(
            sa.select(findings.c.kind, findings.c.subject, findings.c.attribute, findings.c.target_id).where(
                findings.c.status.in_(LIVE), findings.c.kind.in_(CHECK_KINDS)
            )
        )
        return {(r.kind, r.subject, r.attribute, r.target_id) for r in rows}


async def test_a_mismatch_is_a_finding_until_the_owner_agrees(hub: Hub, tmp_path: Path) -> None:
    await policies.apply(hub.db, "attributes:\n  active: hr\n  department: idp\n", "tests")
    ada_name = unique("ada") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1", **{ENTERPRISE: {"employeeNumber": "E1", "department": "Sales"}})
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, department="Engineering"))
    assert (await run_import(hub, export)).ok
    check = await SourceCheck(hub.db, hub.store).run()
    assert check.by_kind == {"hr_mismatch": 1}
    assert await live_findings(hub) == {("hr_mismatch", ada_name, "department", None)}
    # The IdP, which owns the department, comes round to HR's: the finding resolves.
    await hub.store.patch(
        USER_TYPE,
        ada,
        {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Engineering"}],
        },
        source="scim:okta",
    )
    check = await SourceCheck(hub.db, hub.store).run()
    assert check.resolved == 1 and await live_findings(hub) == set()


async def test_a_held_termination_is_a_finding_for_the_hub_and_each_target(
    hub: Hub, downstream: Peer, tmp_path: Path
) -> None:
    await policies.apply(hub.db, POLICY.replace("on_termination: deprovision", "on_termination: hold"), "tests")
    target = await hub.add_target("app", downstream)
    ada_name = unique("ada") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1")
    await hub.push()
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, "terminated", terminated=TODAY - timedelta(days=5)))
    assert (await run_import(hub, export)).ok
    await hub.push()
    assert (await remote_user(downstream, ada_name) or {}).get("active") is True  # held for approval
    pending = await Approvals(hub.db, hub.store.direct).changes(status="pending", identity_id=ada)
    assert [c.reasons for c in pending] == [
        ["sources.workday.on_termination: a termination from HR source workday waits for approval"]
    ]
    check = await SourceCheck(hub.db, hub.store).run()
    assert check.deprovisioned == 0  # already asked: a second ask would only supersede the first
    assert await live_findings(hub) == {
        ("terminated_but_active", ada_name, "", None),
        ("terminated_but_active_in_app", ada_name, "", target.id),
    }
    await Approvals(hub.db, hub.store.direct).approve([pending[0].id], "carol")
    await hub.push()
    account = await remote_user(downstream, ada_name)
    assert account is None or account["active"] is False
    check = await SourceCheck(hub.db, hub.store).run()
    assert check.resolved == 2 and await live_findings(hub) == set()


async def test_the_check_deprovisions_when_the_grace_ends_without_a_new_export(hub: Hub, tmp_path: Path) -> None:
    ada_name = unique("ada") + "@example.com"
    ada = await idp_user(hub, ada_name, "E1")
    export = tmp_path / "workday.csv"
    export.write_text(HEADER + row("E1", ada_name, "terminated", terminated=TODAY + timedelta(days=3)))
    assert (await run_import(hub, export)).ok
    check = await SourceCheck(hub.db, hub.store).run()
    assert (check.deprovisioned, check.by_kind) == (0, {"termination_approaching": 1})
    check = await SourceCheck(hub.db, hub.store).run(today=TODAY + timedelta(days=4))
    assert check.deprovisioned == 1 and check.by_kind == {}
    assert (await hub_user(hub.db, ada)).doc["active"] is False  # type: ignore[union-attr]


async def test_accounts_without_an_hr_record_and_records_without_a_user_are_findings(
    hub: Hub, downstream: Peer, tmp_path: Path
) -> None:
    target = await hub.add_target("app", downstream)
    ada_name, cy_name = unique("ada") + "@example.com", unique("contractor") + "@example.com"
    await idp_user(hub, ada_name, "E1")
    await idp_user(hub, cy_name, "C7")
    await hub.push()
    export = tmp_path / "workday.csv"
    export.write_text(
        HEADER
        + row("E1", ada_name)
        + row("E2", "joiner@example.com")
        + row("E3", "later@example.com", hire=TODAY + timedelta(days=30))
    )
    assert (await run_import(hub, export)).ok
    await SourceCheck(hub.db, hub.store).run()
    assert await live_findings(hub) == {
        ("no_hr_record", cy_name, "", target.id),
        ("hr_record_unmatched", "workday:E2", "", None),
    }
    # The IdP provisions the joiner: the record correlates now, and its finding resolves.
    await idp_user(hub, "joiner@example.com", "E2")
    await SourceCheck(hub.db, hub.store).run()
    assert await live_findings(hub) == {("no_hr_record", cy_name, "", target.id)}


async def test_a_joiner_is_created_on_the_hire_date_and_not_before(hub: Hub, downstream: Peer, tmp_path: Path) -> None:
    await SourceRepository(hub.db).update_config("workday", {"joiners": "create"})
    await hub.add_target("app", downstream)
    manager_name, joiner_name = unique("mia") + "@example.com", unique("jo") + "@example.com"
    await idp_user(hub, manager_name, "E1")
    export = tmp_path / "workday.csv"
    export.write_text(
        HEADER + row("E1", manager_name) + row("E2", joiner_name, hire=TODAY + timedelta(days=7), manager="E1")
    )
    report = await run_import(hub, export)
    assert (report.created, report.unmatched) == (0, 1)
    await hub.push()
    assert await remote_user(downstream, joiner_name) is None
    check = await SourceCheck(hub.db, hub.store).run()
    assert check.created == 0 and check.by_kind == {}  # a joiner still to come is not a finding either
    check = await SourceCheck(hub.db, hub.store).run(today=TODAY + timedelta(days=7))
    assert check.created == 1
    await hub.push()
    account = await remote_user(downstream, joiner_name)
    assert account is not None and account["active"] is True and account.get("title") == "Engineer"
    records = {r.employee_id: r for r in await SourceRepository(hub.db).records()}
    joiner = await hub_user(hub.db, records["E2"].identity_id or "")
    assert joiner is not None and joiner.doc[ENTERPRISE]["manager"]["value"] == records["E1"].identity_id
    changes = await Approvals(hub.db, hub.store.direct).changes(identity_id=records["E2"].identity_id)
    assert [(c.op, c.source) for c in changes] == [("create", "hr:workday")]


async def test_a_mover_leaves_the_targets_whose_scope_was_the_old_department_and_gets_a_review(
    hub: Hub, downstream: Peer, tmp_path: Path
) -> None:
    """Issue 17, item 5: a department change re-evaluates scopes and opens a review of the old role's access."""
    await hub.add_target("eng-tools", downstream, TargetConfig(scope=f'{ENTERPRISE}:department eq "Engineering"'))
    ada_name, mia_name, max_name = (unique(n) + "@example.com" for n in ("ada", "mia", "max"))
    ada = await idp_user(hub, ada_name, "E1")
    await idp_user(hub, mia_name, "E2")
    other = await idp_user(hub, max_name, "E3")
    engineers = await hub.group(unique("eng-admins"), [ada, other])
    export = tmp_path / "workday.csv"
    export.write_text(
        HEADER
        + row("E2", mia_name, department="Engineering")
        + row("E1", ada_name, department="Engineering", manager="E2")
    )
    first = await run_import(hub, export)
    assert first.changed == 2 and first.reviews == []  # a first department is no move
    await hub.push()
    assert (await remote_user(downstream, ada_name) or {}).get("active") is True
    export.write_text(
        HEADER + row("E2", mia_name, department="Engineering") + row("E1", ada_name, department="Sales", manager="E2")
    )
    moved = await run_import(hub, export)
    assert moved.changed == 1 and moved.reviews == [f"mover {ada_name}: Engineering -> Sales {TODAY.isoformat()}"]
    await hub.push()
    account = await remote_user(downstream, ada_name)
    assert account is None or account["active"] is False
    campaign, items = await Reviews(hub.db, hub.store).show(moved.reviews[0])
    assert (campaign.scope_kind, campaign.status, campaign.reviewer) == ("member", "open", "manager")
    assert [(i.member_id, i.group_id, i.reviewers) for i in items] == [(ada, engineers, [mia_name])]
    async with hub.db.read() as conn:  # no group's own review: the group's scheduled one is not held back
        assert engineers not in await review_rows.groups_in_open_campaigns(conn)
