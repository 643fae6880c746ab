"""The web console in a real headless Chromium (issue 18): sign-in, approval end to end, refusals, axe.

One browser and one hub for the module (``tests/console_world.py``). Each test gets a fresh browser
context, so cookies never leak between people. Every page is checked with axe-core (vendored in
``tests/assets``): a violation of serious or critical impact fails. The screenshots in
``docs/console/`` are the ones these tests take.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from scimward.web.nav import PAGES
from tests.console_world import GROUP, World, console_world, run, wait_for
from tests.test_propagate import remote_group_members

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "assets" / "axe.min.js"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"


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
def page(context: BrowserContext) -> Page:
    return context.new_page()


def accessible(page: Page) -> None:
    """axe-core on the page as it is: no violation of serious or critical impact."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the driver, so the page's CSP stays strict
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
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
    session = next(c for c in page.context.cookies() if c["name"] == "scimward_console")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    for entry in PAGES:
        page.goto(world.console + entry.path)
        expect(page.locator("h1")).to_be_visible()
        accessible(page)
        shot(page, entry.title.lower())
    page.goto(world.console + "/identities?filter=" + 'userName sw "ada"')
    page.get_by_role("link", name="ada@example.com").click()
    expect(page.get_by_role("heading", name="Source state")).to_be_visible()
    expect(page.get_by_role("heading", name="Effective state")).to_be_visible()
    accessible(page)
    shot(page, "identity")
    page.goto(world.console + f"/changes/{world.held_change}")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    accessible(page)
    shot(page, "change")
    page.goto(world.console + "/identities?filter=" + "userName sw (")
    expect(page.locator(".error")).to_be_visible()  # a bad filter is said, not a 500
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(world.console + "/")
    accessible(page)
    shot(page, "dashboard-narrow")


def test_a_form_without_its_csrf_token_is_refused(page: Page, world: World) -> None:
    sign_in(page, world, "root")
    answer = page.request.post(world.console + "/changes/decide",
                               form={"action": "reject", "id": world.held_change})
    assert answer.status == 403
    answer = page.request.post(world.console + "/changes/decide",
                               form={"csrf": "not-the-token", "action": "reject", "id": world.held_change})
    assert answer.status == 403
    assert world.approvals(lambda a: a.show(world.held_change)).status == "pending"
    fresh = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        answer = fresh.request.post(world.console + "/sign-in", form={"name": "root",
                                                                      "password": world.passwords["root"]})
        assert answer.status == 403
    finally:
        fresh.close()


def test_a_viewer_cannot_approve_even_by_posting_directly(page: Page, world: World) -> None:
    sign_in(page, world, "vera")
    page.goto(world.console + "/changes")
    expect(page.get_by_role("link", name=world.held_change[:8])).to_be_visible()
    expect(page.get_by_role("button", name="Approve selected")).to_have_count(0)
    expect(page.get_by_role("link", name="Sessions")).to_have_count(0)
    answer = page.request.post(world.console + "/changes/decide",
                               form={"csrf": csrf_of(page), "action": "approve", "id": world.held_change})
    assert answer.status == 403
    assert "needs the approver role" in answer.text()
    assert page.request.get(world.console + "/sessions").status == 403
    assert world.approvals(lambda a: a.show(world.held_change)).status == "pending"


def test_signing_in_over_openid_connect_maps_the_role_and_refuses_the_unmapped(page: Page, world: World,
                                                                             browser: Browser) -> None:
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
    page.get_by_role("link", name=world.held_change[:8]).click()
    page.get_by_label("Note").fill("checked with the team lead")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_contain_text("approved and applied")
    assert world.approvals(lambda a: a.show(world.held_change)).status == "approved"
    members = wait_for(lambda: run(lambda: remote_group_members(world.downstream, GROUP)))
    assert len(members) == 1
    page.goto(world.console + "/audit?kind=console_action")
    expect(page.get_by_role("cell", name=f"change:{world.held_change}")).to_be_visible()
    shot(page, "audit-after-approval")
