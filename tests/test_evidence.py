"""Automation coverage, propagation risk, the findings by framework control and the evidence report
(issue 16, items 1-4 and 6), on a small estate whose figures are worked out by hand below.

The estate: two targets, crm (reconciled an hour ago, daily) and erp (reconciling off, reconciled an
hour ago too); users ada (manager bob), bob (no owner) and cy (manager ada, but entered by hand:
source ``cli``); groups admins (privileged, owned by bob, a 90-day cadence, never reviewed) and staff
(no owner). What the targets hold is written as propagate and reconcile would have left it:

    links:        crm: ada, bob, admins, staff          erp: ada, staff
    memberships:  crm: admins>ada, staff>bob, staff>ada   erp: staff>ada
    findings:     crm: an orphaned account "acct-9"; attribute drift of bob's title

Coverage, by hand:
    linked accounts      users' accounts 3 (ada 2, bob 1) of 3 + 1 orphaned         = 3/4
    owned and sourced    ada (bob, scim), admins (bob, scim); not bob, cy (cli), staff = 2/5
    on schedule          crm yes; erp off                                         = 1/2
    privileged reviewed  admins has never been reviewed                           = 0/1

Propagation risk, by hand (privileged weight 5):
    blast radius   ada 2 accounts + 3 memberships = 5; bob 1 + 1 = 2; admins 1 + 5*1 = 6; staff 2 + 3 = 5
    total          users' accounts 3 + admins 6 + staff 5 + orphaned 1 = 15
    ungoverned     bob 1 (no owner, drifted) + admins 6 (review overdue) + staff 5 (no owner) + 1 orphaned = 13
    per target     crm 1+1+6+3+1 = 12 (ungoverned 1+6+3+1 = 11); erp 1+2 = 3 (ungoverned 2)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from scimward.api.settings import Settings
from scimward.governance import catalogue, snapshots
from scimward.governance.coverage import facts_of, read_estate
from scimward.governance.risk import compute as compute_risk
from scimward.policy import blast, identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA, GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store import Direct
from scimward.store.database import Database
from scimward.store.governance.evidence import EstateRow
from scimward.store.provisioning import TargetRepository
from scimward.store.tables import audit_events, findings, link_members, links, reconcile_runs
from scimward.store.timeutil import utcnow
from tests import forkserver
from tests.conftest import ServerThread, issue_token

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
pytestmark = pytest.mark.anyio


@dataclass
class Fixture:
    db: Database
    url: str
    ids: dict[str, str]
    crm: int
    erp: int


def user(name: str, manager: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": name}
    if manager:
        body["schemas"].append(ENTERPRISE)
        body[ENTERPRISE] = {"manager": {"value": manager}}
    return normalize(body, USER_TYPE)


def group(name: str, members: list[str], governance: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}
    if governance:
        body["schemas"].append(GOVERNANCE_GROUP_SCHEMA)
        body[GOVERNANCE_GROUP_SCHEMA] = governance
    return normalize(body, GROUP_TYPE)


def finding(
    target_id: int,
    kind: str,
    subject: str,
    identity_id: str | None,
    attribute: str,
    now: datetime,
    owner: str | None = None,
    remote_id: str | None = None,
) -> dict[str, Any]:
    """A finding row as reconcile records it."""
    return {
        "target_id": target_id,
        "kind": kind,
        "severity": catalogue.kind(kind).severity,
        "resource_type": "User",
        "subject": subject,
        "identity_id": identity_id,
        "remote_id": remote_id,
        "attribute": attribute,
        "status": "open",
        "first_seen": now,
        "last_seen": now,
        "owner": owner,
    }


@pytest.fixture
async def estate(hub_url: str) -> AsyncIterator[Fixture]:
    db = Database(hub_url)
    store = identity_store(db)
    scim = {"source": "scim:okta", "actor": "okta"}
    bob = (await store.create(USER_TYPE, user("bob@example.com"), **scim)).id
    ada = (await store.create(USER_TYPE, user("ada@example.com", bob), **scim)).id
    cy = (await store.create(USER_TYPE, user("cy@example.com", ada), source="cli", actor="alice")).id
    admins = (
        await store.create(
            GROUP_TYPE,
            group(
                "admins",
                [ada],
                {"owners": [{"value": bob, "display": "bob@example.com"}], "privileged": True, "reviewCadence": 90},
            ),
            **scim,
        )
    ).id
    staff = (await store.create(GROUP_TYPE, group("staff", [bob, ada]), **scim)).id
    repository = TargetRepository(db)
    crm = (await repository.add("crm", "https://crm.invalid/scim/v2", "sealed", {})).id
    erp = (await repository.add("erp", "https://erp.invalid/scim/v2", "sealed", {"reconcile_every": "off"})).id
    now = utcnow()
    linked = [
        (crm, ada, "User"),
        (crm, bob, "User"),
        (crm, admins, "Group"),
        (crm, staff, "Group"),
        (erp, ada, "User"),
        (erp, staff, "Group"),
    ]
    async with db.write() as conn:
        await conn.execute(
            links.insert(),
            [
                {
                    "target_id": t,
                    "identity_id": i,
                    "resource_type": rt,
                    "remote_id": f"r-{i}",
                    "state": {},
                    "status": "active",
                    "acknowledged": now,
                }
                for t, i, rt in linked
            ],
        )
        await conn.execute(
            link_members.insert(),
            [
                {"target_id": t, "group_id": g, "member_id": m}
                for t, g, m in [(crm, admins, ada), (crm, staff, bob), (crm, staff, ada), (erp, staff, ada)]
            ],
        )
        await conn.execute(
            reconcile_runs.insert(),
            [
                {
                    "target_id": t,
                    "trigger": "schedule",
                    "repair": False,
                    "status": "ok",
                    "started": now - timedelta(hours=1),
                    "heartbeat": now,
                    "finished": now,
                }
                for t in (crm, erp)
            ],
        )
        await conn.execute(
            findings.insert(),
            [
                finding(crm, "orphaned_account", "acct-9", None, "", now, owner="crm-team", remote_id="acct-9"),
                finding(crm, "attribute_drift", bob, bob, "title", now),
            ],
        )
    yield Fixture(db, hub_url, {"ada": ada, "bob": bob, "cy": cy, "admins": admins, "staff": staff}, crm, erp)
    await db.dispose()


def scimward(*args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, timeout=120, env={**os.environ, "SCIMWARD_ACTOR": "auditor"})


async def test_coverage_matches_the_figures_worked_out_by_hand(estate: Fixture) -> None:
    coverage = (await read_estate(estate.db)).coverage().to_json()
    assert {k: (v["part"], v["whole"]) for k, v in coverage.items() if isinstance(v, dict)} == {
        "linked_accounts": (3, 4),
        "owned_and_sourced": (2, 5),
        "reconciled_on_schedule": (1, 2),
        "privileged_reviewed": (0, 1),
    }
    assert coverage["overall"] == round((3 / 4 + 2 / 5 + 1 / 2 + 0) / 4, 4)


async def test_risk_matches_the_figures_worked_out_by_hand(estate: Fixture) -> None:
    risk = compute_risk(await read_estate(estate.db)).to_json()
    assert (risk["total"], risk["ungoverned"], risk["orphaned_accounts"]) == (15, 13, 1)
    assert risk["by_gap"] == {"drifted": 1, "no owner": 6, "orphaned": 1, "review overdue": 6}
    assert [(t["name"], t["total"], t["ungoverned"]) for t in risk["per_target"]] == [("crm", 12, 11), ("erp", 3, 2)]
    names = {v: k for k, v in estate.ids.items()}
    assert [(names[c["id"]], c["weighted"]) for c in risk["top"]] == [
        ("admins", 6),
        ("ada", 5),
        ("staff", 5),
        ("bob", 2),
    ]
    admins = risk["top"][0]
    assert admins["gaps"] == ["review overdue"] and any("review" in a for a in admins["advice"])


async def test_each_identitys_figure_is_the_gates_blast_radius(estate: Fixture) -> None:
    found = await read_estate(estate.db)
    contributors = {c.id: c for c in compute_risk(found).contributors}
    async with Direct(estate.db).transaction() as tx:
        for identity in found.identities:
            radius = await blast.of_identity(tx, identity.resource_type, identity.id, identity.privileged)
            mine = contributors.get(identity.id)
            assert (radius["accounts"], radius["entitlements"], radius["targets"], radius["weighted"]) == (
                (mine.accounts, mine.entitlements, mine.targets, mine.weighted) if mine else (0, 0, 0, 0)
            )


def test_a_privileged_group_counts_as_reviewed_only_within_its_cadence() -> None:
    now = datetime(2026, 12, 3, 8, 0)
    row = EstateRow(
        "g1",
        "Group",
        "admins",
        "scim:okta",
        {
            GOVERNANCE_GROUP_SCHEMA: {
                "privileged": True,
                "reviewCadence": 90,
                "owners": [{"value": "u1", "display": "bob"}],
            }
        },
        True,
        now,
    )
    assert facts_of(row, now - timedelta(days=89), now).reviewed
    assert not facts_of(row, now - timedelta(days=91), now).reviewed
    assert not facts_of(row, None, now).reviewed
    uncadenced = EstateRow(
        "g2", "Group", "ops", "scim:okta", {GOVERNANCE_GROUP_SCHEMA: {"privileged": True}}, True, now
    )
    assert not facts_of(uncadenced, now, now).reviewed


def test_every_finding_kind_in_the_catalogue_has_framework_ids() -> None:
    """Issue 16, done when: every finding kind has framework ids (OWASP NHI 2025 or NIST CSF 2.0)."""
    for described in catalogue.KINDS.values():
        assert described.frameworks, described.kind
        for framework_id in described.frameworks:
            assert catalogue.parse_framework(framework_id) == framework_id


async def test_the_report_shows_the_figures_worked_out_by_hand(estate: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = await asyncio.to_thread(
        scimward, "report", "--format", "json", "--out", str(out), "--database-url", estate.url
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["coverage"]["linked_accounts"] == {"part": 3, "whole": 4, "share": 0.75}
    assert report["coverage"]["owned_and_sourced"]["share"] == 0.4
    assert (report["risk"]["total"], report["risk"]["ungoverned"]) == (15, 13)
    assert report["audit"]["intact"] is True and report["audit"]["events"] > 0
    controls = {c["control"]: c for c in report["controls"]}
    assert controls["csf:DE.CM-03"]["live"] == 1 and controls["csf:DE.CM-03"]["samples"][0]["subject"] == "acct-9"
    assert controls["csf:PR.AA-01"]["live"] == 2
    assert [(r["target"], r["on_schedule"]) for r in report["reconciles"]] == [("crm", True), ("erp", False)]
    assert report["reviews"] == {"privileged_groups": 1, "reviewed_within_cadence": 0, "share": 0.0}
    assert [day["risk_total"] for day in report["trend"]] == [15]  # today's snapshot, taken by the report


async def test_the_html_report_is_one_self_contained_file(estate: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = await asyncio.to_thread(scimward, "report", "--out", str(out), "--database-url", estate.url)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 4
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "acct-9" in html and "csf:PR.AA-05" in html and "intact" in html


async def test_a_snapshot_sets_the_gauges_and_keeps_one_row_a_day(estate: Fixture) -> None:
    await snapshots.take(estate.db)
    await snapshots.take(estate.db)
    kept = await snapshots.history(estate.db)
    assert len(kept) == 1 and kept[0][1]["risk"]["total"] == 15  # type: ignore[index]
    assert REGISTRY.get_sample_value("scimward_propagation_risk", {"part": "ungoverned"}) == 13.0
    assert REGISTRY.get_sample_value("scimward_automation_coverage_ratio", {"share": "linked_accounts"}) == 0.75


async def test_findings_by_framework_owner_and_status(estate: Fixture) -> None:
    listed = await asyncio.to_thread(
        scimward, "findings", "--framework", "csf:DE.CM-09", "--json", "--database-url", estate.url
    )
    assert listed.returncode == 0, listed.stderr
    assert [f["kind"] for f in json.loads(listed.stdout)] == ["attribute_drift"]
    assert "csf:DE.CM-09" in json.loads(listed.stdout)[0]["frameworks"]
    owned = json.loads(
        (
            await asyncio.to_thread(scimward, "findings", "--owner", "crm-team", "--json", "--database-url", estate.url)
        ).stdout
    )
    assert [f["kind"] for f in owned] == ["orphaned_account"]
    bad = await asyncio.to_thread(scimward, "findings", "--framework", "iso:27001", "--database-url", estate.url)
    assert bad.returncode == 2 and "owasp-nhi:NHI1" in bad.stderr and "Traceback" not in bad.stderr


async def test_an_accepted_risk_expires_back_to_open(estate: Fixture) -> None:
    found = json.loads(
        (
            await asyncio.to_thread(scimward, "findings", "--owner", "crm-team", "--json", "--database-url", estate.url)
        ).stdout
    )
    finding_id = str(found[0]["id"])
    accepted = await asyncio.to_thread(
        scimward,
        "findings",
        "accept",
        finding_id,
        "--until",
        "30d",
        "--reason",
        "decommissioned next sprint",
        "--as",
        "carol",
        "--database-url",
        estate.url,
    )
    assert accepted.returncode == 0, accepted.stderr
    listed = json.loads(
        (
            await asyncio.to_thread(
                scimward, "findings", "--status", "risk_accepted", "--json", "--database-url", estate.url
            )
        ).stdout
    )
    assert [(f["id"], f["accepted_by"], f["accepted_reason"]) for f in listed] == [
        (int(finding_id), "carol", "decommissioned next sprint")
    ]
    until = datetime.fromisoformat(listed[0]["accepted_until"].rstrip("Z"))
    assert timedelta(days=29) < until - utcnow() <= timedelta(days=30)
    async with estate.db.read() as conn:
        event = (
            await conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.data).where(audit_events.c.kind == "finding_status")
            )
        ).one()
    assert event[0] == "carol" and json.loads(event[1])["status"] == "risk_accepted"
    async with estate.db.write() as conn:
        await conn.execute(
            findings.update()
            .where(findings.c.id == int(finding_id))
            .values(accepted_until=utcnow() - timedelta(minutes=1))
        )
    reopened = json.loads(
        (
            await asyncio.to_thread(scimward, "findings", "--status", "open", "--json", "--database-url", estate.url)
        ).stdout
    )
    assert int(finding_id) in [f["id"] for f in reopened]
    refused = await asyncio.to_thread(
        scimward, "findings", "accept", finding_id, "--until", "soon", "--reason", "x", "--database-url", estate.url
    )
    assert refused.returncode == 2 and "neither an interval" in refused.stderr


def _admin_api(estate: Fixture) -> dict[str, Any]:
    """Findings, acceptance, the report and the audit status over the admin API, as an admin token."""
    token = issue_token(estate.url, "carol", scopes="admin")
    with (
        ServerThread(Settings(database_url=estate.url, run_worker=False)) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/admin/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as admin,
    ):
        drift = admin.get("/findings", params={"framework": "csf:DE.CM-09"}).json()["findings"]
        bad = admin.get("/findings", params={"framework": "iso:27001"})
        accepted = admin.post(f"/findings/{drift[0]['id']}/accept", json={"until": "7d", "reason": "known"})
        refused = admin.post(f"/findings/{drift[0]['id']}/accept", json={"until": "later", "reason": "known"})
        return {
            "drift": drift,
            "bad": (bad.status_code, bad.json()),
            "accepted": accepted.json(),
            "refused": refused.status_code,
            "report": admin.get("/report").json(),
            "audit": admin.get("/audit").json(),
            "paths": admin.get("/openapi.json").json()["paths"],
        }


async def test_the_admin_api_lists_accepts_and_reports(estate: Fixture) -> None:
    answers = await asyncio.to_thread(_admin_api, estate)
    assert [f["kind"] for f in answers["drift"]] == ["attribute_drift"]
    assert answers["bad"][0] == 400 and "owasp-nhi:NHI1" in answers["bad"][1]["detail"]
    accepted = answers["accepted"]
    assert (accepted["status"], accepted["accepted_by"], accepted["accepted_reason"]) == (
        "risk_accepted",
        "carol",
        "known",
    )
    assert answers["refused"] == 400
    assert (answers["report"]["risk"]["total"], answers["report"]["risk"]["ungoverned"]) == (15, 13)
    assert answers["audit"]["intact"] is True and len(answers["audit"]["head"]) == 64
    assert {"/findings", "/findings/{id}/accept", "/report", "/audit"} <= set(answers["paths"])
