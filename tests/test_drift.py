"""The pure comparison of reconcile (``sync.drift``): desired, last pushed and actual, named."""

from __future__ import annotations

from scimward.sync.drift import (
    Drift,
    Kind,
    Severity,
    account_drift,
    acknowledge,
    flat_path,
    membership_drift,
    orphan_drift,
    owned_paths,
    satisfies,
    unwanted_account_drift,
)
from scimward.sync.targets import AttributeRule

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OWNED = owned_paths(None)
DESIRED = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "externalId": "h1",
    "userName": "ada",
    "title": "Engineer",
    "active": True,
    "emails": [{"value": "ada@x", "type": "work", "primary": True}, {"value": "a@home", "type": "home"}],
    ENTERPRISE: {"department": "R&D", "manager": {"value": "r9"}},
}


def actual(**changes: object) -> dict[str, object]:
    """The account as a target returns it: what it was sent plus what it adds itself."""
    account = {
        **DESIRED,
        "id": "r1",
        "meta": {"resourceType": "User"},
        "groups": [{"value": "g"}],
        ENTERPRISE: {"department": "R&D", "manager": {"value": "r9", "$ref": "../Users/r9", "displayName": "B"}},
    }
    account.update(changes)
    return account


def kinds(drifts: list[Drift]) -> set[tuple[str, str]]:
    return {(d.kind.value, d.attribute) for d in drifts}


# -- satisfies ------------------------------------------------------------------------------------


def test_a_target_may_add_to_what_it_was_sent() -> None:
    assert satisfies({"value": "r9"}, {"value": "r9", "$ref": "../Users/r9", "displayName": "B"})


def test_multi_valued_attributes_compare_regardless_of_order() -> None:
    assert satisfies([{"value": "a"}, {"value": "b"}], [{"value": "b"}, {"value": "a"}])
    assert not satisfies([{"value": "a"}, {"value": "b"}], [{"value": "a"}, {"value": "a"}])
    assert not satisfies([{"value": "a"}], [{"value": "a"}, {"value": "c"}])


def test_a_dropped_false_flag_inside_a_value_is_the_same_value() -> None:
    assert satisfies({"value": "a", "primary": False}, {"value": "a"})
    assert not satisfies(False, None), "a top-level false (active) must be there"


def test_attribute_names_are_case_insensitive_and_values_exact() -> None:
    assert satisfies({"givenName": "Ada"}, {"givenname": "Ada"})
    assert not satisfies({"givenName": "Ada"}, {"givenName": "ada"})


def test_a_boolean_is_not_a_number() -> None:
    assert not satisfies(True, 1)


def test_absent_is_satisfied_by_empty() -> None:
    assert satisfies(None, [])
    assert satisfies([], None)
    assert not satisfies(None, "x")


# -- accounts -------------------------------------------------------------------------------------


def test_an_account_as_sent_has_no_drift() -> None:
    assert account_drift("User", "h1", "r1", DESIRED, DESIRED, actual(), OWNED) == []


def test_a_value_changed_in_the_app_differs_from_last_pushed() -> None:
    [drift] = account_drift("User", "h1", "r1", DESIRED, DESIRED, actual(title="CEO"), OWNED)
    assert (drift.kind, drift.attribute) == (Kind.CHANGED_IN_APP, "title")
    assert (drift.desired, drift.last_pushed, drift.actual) == ("Engineer", "Engineer", "CEO")
    assert drift.severity is Severity.MEDIUM


def test_a_hub_change_that_never_arrived_is_attribute_drift() -> None:
    pushed = {**DESIRED, "title": "Intern"}
    [drift] = account_drift("User", "h1", "r1", DESIRED, pushed, actual(title="Intern"), OWNED)
    assert drift.kind is Kind.ATTRIBUTE_DRIFT


def test_a_push_on_its_way_hides_the_hub_change_but_not_the_app_change() -> None:
    pushed = {**DESIRED, "title": "Intern"}
    assert account_drift("User", "h1", "r1", DESIRED, pushed, actual(title="Intern"), OWNED, in_flight=True) == []
    assert kinds(account_drift("User", "h1", "r1", DESIRED, pushed, actual(title="CEO"), OWNED, in_flight=True)) == {
        ("changed_in_app", "title")
    }


def test_an_owned_attribute_added_in_the_app_is_drift_and_an_unowned_one_is_not() -> None:
    owned = owned_paths((AttributeRule("userName", "userName"), AttributeRule("title", "title")))
    desired = {"externalId": "h1", "userName": "ada"}
    drifts = account_drift(
        "User",
        "h1",
        "r1",
        desired,
        desired,
        {"id": "r1", "externalId": "h1", "userName": "ada", "title": "CEO", "nickName": "x"},
        owned,
    )
    assert kinds(drifts) == {("changed_in_app", "title")}


def test_extension_attributes_are_compared_one_by_one() -> None:
    changed = actual(**{ENTERPRISE: {"department": "Sales", "manager": {"value": "r9"}}})
    assert kinds(account_drift("User", "h1", "r1", DESIRED, DESIRED, changed, OWNED)) == {
        ("changed_in_app", f"{ENTERPRISE}:department")
    }


def test_an_identity_switched_off_in_the_hub_but_active_in_the_app_is_critical() -> None:
    desired = {**DESIRED, "active": False}
    [drift] = account_drift("User", "h1", "r1", desired, desired, actual(active=True), OWNED)
    assert drift.kind is Kind.ACTIVE_SHOULD_BE_INACTIVE and drift.severity is Severity.CRITICAL


def test_privileged_attributes_raise_the_severity() -> None:
    desired = {**DESIRED, "roles": [{"value": "user"}]}
    [drift] = account_drift("User", "h1", "r1", desired, desired, actual(roles=[{"value": "admin"}]), OWNED)
    assert drift.severity is Severity.HIGH


def test_an_unwanted_account_must_be_inactive() -> None:
    pushed = {**DESIRED, "active": False}
    assert unwanted_account_drift("h1", "r1", pushed, "deactivated", actual(active=False), "deleted") == []
    [drift] = unwanted_account_drift("h1", "r1", pushed, "deactivated", actual(active=True), "deleted", in_flight=True)
    assert drift.kind is Kind.ACTIVE_SHOULD_BE_INACTIVE
    assert unwanted_account_drift("h1", "r1", DESIRED, "active", actual(), "deleted", in_flight=True) == [], (
        "its deprovisioning is on its way"
    )


def test_an_account_without_active_counts_as_active() -> None:
    account = {"id": "r1", "userName": "x"}
    assert kinds(unwanted_account_drift("h1", "r1", None, "deactivated", account, "deleted")) == {
        ("active_should_be_inactive", "active")
    }


def test_only_an_active_orphan_is_a_finding() -> None:
    assert orphan_drift("User", "r7", {"id": "r7", "active": False}, "nobody") == []
    [drift] = orphan_drift("User", "r7", {"id": "r7", "userName": "x", "password": "p"}, "nobody")
    assert drift.subject == "r7" and drift.actual == {"id": "r7", "userName": "x"}


# -- memberships ----------------------------------------------------------------------------------


def test_extra_and_missing_members() -> None:
    drifts = membership_drift(
        "g1", "rg", desired={"a", "b"}, acknowledged={"a", "b"}, actual={"a", "c"}, members={"a": "h-a", "b": "h-b"}
    )
    assert kinds(drifts) == {
        ("extra_membership", 'members[value eq "c"]'),
        ("missing_membership", 'members[value eq "b"]'),
    }
    extra = next(d for d in drifts if d.kind is Kind.EXTRA_MEMBERSHIP)
    assert (extra.desired, extra.last_pushed, extra.actual, extra.severity) == (False, False, True, Severity.HIGH)


def test_membership_changes_on_their_way_are_not_drift() -> None:
    # The hub removed "b" and added "c"; the group's push has not gone yet.
    assert (
        membership_drift(
            "g1", "rg", desired={"a", "c"}, acknowledged={"a", "b"}, actual={"a", "b"}, members={}, in_flight=True
        )
        == []
    )


# -- repair ---------------------------------------------------------------------------------------


def test_acknowledge_records_what_the_target_holds() -> None:
    pushed = {**DESIRED, ENTERPRISE: {"department": "R&D"}}
    account = actual(title="CEO", nickName="boss", **{ENTERPRISE: {}})
    state = acknowledge(pushed, account, ["title", "nickName", f"{ENTERPRISE}:department", "displayName"])
    assert state["title"] == "CEO" and state["nickName"] == "boss" and "displayName" not in state
    assert state[ENTERPRISE] == {}
    assert pushed["title"] == "Engineer" and pushed[ENTERPRISE] == {"department": "R&D"}, "a copy"


def test_flat_paths_follow_the_diff() -> None:
    assert flat_path("name.givenName") == "name"
    assert flat_path(f"{ENTERPRISE}:manager.value") == f"{ENTERPRISE}:manager"
    assert flat_path("urn:ietf:params:scim:schemas:core:2.0:User:title") == "title"


def test_an_account_that_does_not_say_whether_it_is_active_is_active() -> None:
    account = {key: value for key, value in actual().items() if key != "active"}
    assert account_drift("User", "h1", "r1", DESIRED, DESIRED, account, OWNED) == []
    switched_off = {**DESIRED, "active": False}
    assert kinds(account_drift("User", "h1", "r1", switched_off, switched_off, account, OWNED)) == {
        ("active_should_be_inactive", "active")
    }
