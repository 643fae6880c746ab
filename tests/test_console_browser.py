"""The web console in a real headless Chromium (issue 18): sign-in, approval end to end, refusals, axe.

One browser and one hub for the module (``tests/console_world.py``). Each test gets a fresh browser
context, so cookies never leak between people, and no test depends on another having run (or not):
the refusals are tried on a held change that no test decides. Every page is checked with axe-core (vendored in
``tests/assets``): a violation of serious or critical impact fails. The screenshots in
``docs/console/`` are the ones these tests take with ``SCIMWARD_CONSOLE_SCREENSHOTS=docs``.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from scimward.web.context import short_id
from scimward.web.nav import PAGES
from tests.console_world import (
    CAMPAIGN,
    GROUP,
    KEPT_GROUP,
    NHI,
    REVIEWED,
    REVIEWER,
    UNEXPIRING_NHI,
    World,
    console_world,
    run,
    wait_for,
)
from tests.test_propagate import remote_group_members, remote_user

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "assets" / "axe.min.js"
#: Where the screenshots go: docs/console (what docs/console.md shows) with SCIMWARD_CONSOLE_SCREENSHOTS=docs,
#: else a temporary folder, so that a test run leaves the working tree as it found it.
SHOTS = (
    Path(__file__).resolve().parent.parent / "docs" / "console"
    if os.environ.get("SCIMWARD_CONSOLE_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "scimward-console-shots"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with console_world(tmp_path_factory.mktemp("console")) as built:
        yield built


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab whose console errors on the console's pages fail the test: a script or style the CSP
    blocked, a missing file, a script error (the identity provider's own pages are not ours to judge)."""
    page = context.new_page()
    errors: list[str] = []

    def seen(text: str) -> None:
        if "/console/" in page.url:
            errors.append(f"{page.url}: {text}")

    page.on("console", lambda message: seen(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen(str(error)))
    yield page
    assert not errors, "\n".join(errors)


def accessible(page: Page) -> None:
    """axe-core on the page as it is: no violation of serious or critical impact."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the driver, so the page's CSP stays strict
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: " + "; ".join(bad)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, world: World, name: str) -> None:
    page.goto(world.console + "/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    page.get_by_text("Break-glass administrator").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(world.passwords[name])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".person")).to_have_text(name)


def csrf_of(page: Page) -> str:
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    return token


def test_the_local_administrator_signs_in_and_every_page_passes_axe(page: Page, world: World) -> None:
    page.goto(world.console + "/sign-in")
    page.get_by_text("Break-glass administrator").click()
    accessible(page)
    shot(page, "sign-in")
    sign_in(page, world, "root")
    page.keyboard.press("Tab")  # the keyboard's first stop skips the navigation
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="pending approvals")).to_be_focused()
    session = next(c for c in page.context.cookies() if c["name"] == "scimward_console")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    for entry in PAGES:
        page.goto(world.console + entry.path)
        expect(page.locator("h1")).to_be_visible()
        accessible(page)
        shot(page, entry.title.lower())
    page.goto(world.console + "/changes")
    expect(page.get_by_role("link", name="pending", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("checkbox", name=f"Select change {short_id(world.kept_change)}")).to_be_visible()
    expect(page.get_by_role("button", name="Approve selected")).to_be_visible()
    page.goto(world.console + "/identities?filter=" + 'userName sw "ada"')
    page.get_by_role("link", name="ada@example.com").click()
    expect(page.get_by_role("heading", name="Source state")).to_be_visible()
    expect(page.get_by_role("heading", name="Effective state")).to_be_visible()
    page.get_by_text("As last acknowledged").click()  # the account's state on the target, as it answered
    expect(page.locator("details[open] pre")).to_contain_text('"userName": "ada@example.com"')
    accessible(page)
    shot(page, "identity")
    page.goto(world.console + "/groups")
    page.get_by_role("link", name=KEPT_GROUP).click()
    expect(page.get_by_role("heading", name="Held memberships")).to_be_visible()
    expect(page.locator("main")).to_contain_text("adding bob@example.com to " + KEPT_GROUP)
    accessible(page)
    shot(page, "group")
    page.goto(world.console + f"/changes/{world.kept_change}")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    accessible(page)
    shot(page, "change")
    page.goto(world.console + f"/reviews/{CAMPAIGN}?mine=0")
    expect(page.get_by_role("link", name="bob@example.com")).to_be_visible()
    accessible(page)
    shot(page, "review")
    page.goto(world.console + "/identities?filter=" + "userName sw (")
    expect(page.locator(".error")).to_be_visible()  # a bad filter is said, not a 500
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(world.console + "/")
    accessible(page)
    shot(page, "dashboard-narrow")


def test_a_form_without_its_csrf_token_is_refused(page: Page, world: World) -> None:
    sign_in(page, world, "root")
    answer = page.request.post(world.console + "/changes/decide", form={"action": "reject", "id": world.kept_change})
    assert answer.status == 403
    answer = page.request.post(
        world.console + "/changes/decide", form={"csrf": "not-the-token", "action": "reject", "id": world.kept_change}
    )
    assert answer.status == 403
    assert world.approvals(lambda a: a.show(world.kept_change)).status == "pending"
    fresh = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        answer = fresh.request.post(
            world.console + "/sign-in", form={"name": "root", "password": world.passwords["root"]}
        )
        assert answer.status == 403
    finally:
        fresh.close()


def test_a_viewer_cannot_approve_even_by_posting_directly(page: Page, world: World) -> None:
    sign_in(page, world, "vera")
    page.goto(world.console + "/changes")
    expect(page.get_by_role("link", name=short_id(world.kept_change))).to_be_visible()
    expect(page.get_by_role("button", name="Approve selected")).to_have_count(0)
    expect(page.get_by_role("link", name="Sessions")).to_have_count(0)
    answer = page.request.post(
        world.console + "/changes/decide", form={"csrf": csrf_of(page), "action": "approve", "id": world.kept_change}
    )
    assert answer.status == 403
    assert "needs the approver role" in answer.text()
    assert page.request.get(world.console + "/sessions").status == 403
    assert world.approvals(lambda a: a.show(world.kept_change)).status == "pending"
    page.goto(world.console + "/nhi")
    page.get_by_role("link", name=UNEXPIRING_NHI).click()
    expect(page.get_by_role("heading", name=UNEXPIRING_NHI)).to_be_visible()
    expect(page.get_by_role("button", name="Retire")).to_have_count(0)
    answer = page.request.post(page.url + "/retire", form={"csrf": csrf_of(page), "confirm": "yes"})
    assert answer.status == 403 and "needs the admin role" in answer.text()
    assert world.nhi(UNEXPIRING_NHI).active


def test_signing_in_over_openid_connect_maps_the_role_and_refuses_the_unmapped(
    page: Page, world: World, browser: Browser
) -> None:
    page.goto(world.console + "/sign-in")
    page.get_by_role("link", name="Sign in with your organisation").click()
    page.get_by_role("button", name="olive").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".person")).to_have_text("olive@example.com")
    expect(page.locator(".who .badge")).to_have_text("approver")

    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(world.console + "/sign-in")
        stranger.get_by_role("link", name="Sign in with your organisation").click()
        stranger.get_by_role("button", name="nora").click()
        expect(stranger.get_by_role("heading", name="Not allowed")).to_be_visible()
        assert not [c for c in other.cookies() if c["name"] == "scimward_console"]
    finally:
        other.close()


def test_approving_a_held_change_reaches_the_downstream_scimward(page: Page, world: World) -> None:
    assert run(lambda: remote_group_members(world.downstream, GROUP)) == set()  # held: not effective
    sign_in(page, world, "root")
    page.get_by_role("link", name="pending approvals").click()
    page.get_by_role("link", name=short_id(world.held_change)).click()
    page.get_by_label("Note").fill("checked with the team lead")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_contain_text("approved and applied")
    expect(page).to_have_url(re.compile(rf"/console/changes/{world.held_change}\?notice="))  # a reload re-reads
    assert world.approvals(lambda a: a.show(world.held_change)).status == "approved"
    members = wait_for(lambda: run(lambda: remote_group_members(world.downstream, GROUP)))
    assert len(members) == 1
    page.goto(world.console + "/audit")
    page.get_by_role("link", name="Verify the chain").click()
    expect(page.get_by_role("status")).to_contain_text("The chain is intact")
    page.goto(world.console + "/audit?kind=console_action")
    expect(page.get_by_role("cell", name=f"change:{world.held_change}")).to_be_visible()
    shot(page, "audit-after-approval")


def test_a_reviewer_revokes_an_item_and_the_access_leaves_the_downstream(page: Page, world: World) -> None:
    assert wait_for(lambda: len(run(lambda: remote_group_members(world.downstream, REVIEWED))) == 2)
    sign_in(page, world, REVIEWER)
    page.get_by_role("link", name="Reviews").click()
    page.get_by_role("link", name=CAMPAIGN).click()
    expect(page.get_by_role("link", name="My inbox")).to_have_attribute("aria-current", "page")
    row = page.get_by_role("row").filter(has_text="bob@example.com")
    row.get_by_role("checkbox").check()
    page.get_by_label("Note").fill("left the team in October")
    page.get_by_role("button", name="Revoke selected").click()
    expect(page.locator(".notice")).to_contain_text("revoke")
    members = wait_for(
        lambda: (lambda m: m if len(m) == 1 else None)(run(lambda: remote_group_members(world.downstream, REVIEWED)))
    )
    assert members is not None and len(members) == 1
    page.goto(world.console + f"/reviews/{CAMPAIGN}?mine=0&undecided=0")
    expect(page.get_by_role("row").filter(has_text="bob@example.com")).to_contain_text("revoke by " + REVIEWER)


def test_releasing_the_breaker_pushes_what_it_held(page: Page, world: World) -> None:
    """The mass-change breaker (at most 2 deprovisionings per 10 minutes here) holds the rest of a mass
    deactivation until an approver releases it from the console."""
    leavers = [f"leaver-{n}@example.com" for n in range(4)]
    world.create_users(leavers)

    def downstream_active() -> list[bool] | None:
        accounts = [run(functools.partial(remote_user, world.downstream, name)) for name in leavers]
        return None if None in accounts else [bool(a["active"]) for a in accounts if a is not None]

    assert wait_for(lambda: downstream_active() == [True] * 4)
    world.deactivate(leavers)
    assert wait_for(lambda: (downstream_active() or []).count(False) == 2)
    sign_in(page, world, "root")
    expect(page.locator(".tile.alarm")).to_contain_text("1")
    page.get_by_role("link", name="open breakers").click()
    breaker = page.get_by_role("region", name="Mass-change breakers")
    expect(breaker).to_contain_text("app")
    shot(page, "breaker")
    breaker.get_by_role("button", name="Release 2").click()
    expect(page.locator(".notice")).to_contain_text("Breaker of app released: 2 held change(s) applied.")
    assert wait_for(lambda: downstream_active() == [False] * 4)


def test_an_nhi_is_attested_and_transferred_from_the_console_through_the_gate(page: Page, world: World) -> None:
    sign_in(page, world, "root")
    page.get_by_role("link", name="NHIs").click()
    expect(page.get_by_role("row").filter(has_text=UNEXPIRING_NHI)).to_contain_text("nhi_no_expiry")
    page.get_by_label("Expiring within").select_option("30")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=UNEXPIRING_NHI)).to_have_count(0)  # it never expires
    page.get_by_role("link", name=NHI).click()
    expect(page.get_by_role("heading", name=NHI)).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("ada@example.com")
    accessible(page)
    shot(page, "nhi")
    page.get_by_role("button", name="Attest: still needed, as it is").click()
    expect(page.locator(".notice")).to_contain_text(f"{NHI} attested")
    page.get_by_label("New owner (userName)").fill("nobody@example.com")
    page.get_by_role("button", name="Transfer").click()
    expect(page.locator(".notice")).to_contain_text("no user with userName 'nobody@example.com'")
    page.get_by_label("New owner (userName)").fill("bob@example.com")
    page.get_by_role("button", name="Transfer").click()
    expect(page.locator(".notice")).to_contain_text(f"{NHI} now belongs to bob@example.com")
    assert world.nhi(NHI).owners == ["bob@example.com"]
    assert ("console", "root") in world.change_sources(world.nhi(NHI).id)  # the gate's change, as the CLI's
    page.goto(world.console + "/audit?kind=console_action&subject=nhi:")
    expect(page.get_by_role("cell", name=f"nhi:{NHI}").first).to_be_visible()


def test_a_target_change_is_previewed_and_held_past_the_breaker(page: Page, world: World) -> None:
    """Issue 18: a change of what a target holds shows its plan first; one that deprovisions past the
    breaker's threshold (2 here) is held for a second person's approval, as ``scimward target set`` holds it."""
    people = ("ada@example.com", "bob@example.com", REVIEWER)
    assert wait_for(lambda: all(run(functools.partial(remote_user, world.downstream, name)) for name in people))
    sign_in(page, world, "root")
    page.get_by_role("link", name="Targets").click()
    page.get_by_role("link", name="app", exact=True).click()
    expect(page.get_by_role("heading", name="Change what it holds")).to_be_visible()
    accessible(page)
    shot(page, "target")
    page.get_by_label("Users it receives").fill('userName eq "nobody@example.com"')
    page.get_by_role("button", name="Preview the change").click()
    expect(page.get_by_role("heading", name="Preview: target app")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("holds it for a second person's approval")
    expect(page.get_by_role("row").filter(has_text="scope")).to_contain_text("nobody@example.com")
    accessible(page)
    shot(page, "target-preview")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".notice")).to_contain_text("held for approval as change")
    held = re.search(r"as change ([0-9a-f-]{36})", page.locator(".notice").inner_text())
    assert held
    assert world.approvals(lambda a: a.show(held.group(1))).status == "pending"
    expect(page.locator(".facts")).to_contain_text("every user")  # nothing changed yet
    world.approvals(lambda a: a.reject([held.group(1)], "tests", "not in the tests"))
