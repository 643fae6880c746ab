"""The PATCH engine (RFC 7644 3.5.2) and the Okta / Microsoft Entra ID dialects it accepts."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from scimward.scim.ast import And, AttrPath, Compare
from scimward.scim.errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    MutabilityError,
    NoTarget,
    ScimError,
    TooMany,
)
from scimward.scim.patch import PATCH_OP_SCHEMA, MemberOp, PatchResult, apply_patch
from scimward.scim.resource_types import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)
from scimward.scim.schema import Attribute, AttrType, Mutability, ResourceType, Schema

ENT = ENTERPRISE_USER_SCHEMA
ALICE = "2819c223-7f76-453a-919d-413861904646"
JAMES = "08e1d05d-121c-4561-8b96-473d93df9210"

USER: dict[str, Any] = {
    "schemas": [USER_SCHEMA],
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}],
    "active": True,
}

ENTERPRISE_USER: dict[str, Any] = {
    "schemas": [USER_SCHEMA, ENT],
    "userName": "bjensen",
    ENT: {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
}

GROUP: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"}


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def patch(doc: dict[str, Any], *operations: dict[str, Any], rt: ResourceType = USER_TYPE) -> PatchResult:
    return apply_patch(doc, body(*operations), rt)


def patch_group(*operations: dict[str, Any]) -> PatchResult:
    return apply_patch(GROUP, body(*operations), GROUP_TYPE)


def rewrites(caplog: pytest.LogCaptureFixture) -> str:
    """The rewrites logged by the PATCH engine and by the value normalisation it uses."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("scimward.scim."))


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scimward.scim")
    return caplog


# --- the request body -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, [], "x", 1])
def test_body_must_be_an_object(bad: Any) -> None:
    """RFC 7644 3.5.2: the body is a PatchOp message object; anything else is invalidSyntax."""
    with pytest.raises(InvalidSyntax):
        apply_patch(USER, bad, USER_TYPE)


@pytest.mark.parametrize("schemas", [None, [], [USER_SCHEMA], PATCH_OP_SCHEMA])
def test_body_schemas_must_list_patchop(schemas: Any) -> None:
    """RFC 7644 3.5.2: "schemas" MUST contain the PatchOp URI."""
    with pytest.raises(InvalidSyntax, match="PatchOp"):
        apply_patch(USER, {"schemas": schemas, "Operations": []}, USER_TYPE)


@pytest.mark.parametrize("operations", [None, {}, "add"])
def test_operations_must_be_a_list(operations: Any) -> None:
    """RFC 7644 3.5.2: "Operations" is an array of operation objects."""
    with pytest.raises(InvalidSyntax, match="Operations"):
        apply_patch(USER, {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}, USER_TYPE)


def test_empty_operations_change_nothing() -> None:
    """Entra and Okta may send an empty Operations list; it is accepted and changes nothing."""
    result = patch(USER)
    assert result == PatchResult(USER, (), False)


def test_operation_must_be_an_object() -> None:
    """RFC 7644 3.5.2: each element of Operations is an object."""
    with pytest.raises(InvalidSyntax, match=r"Operations\[0\]"):
        apply_patch(USER, {"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}, USER_TYPE)


@pytest.mark.parametrize("op", ["move", "copy", "", None, 3])
def test_unknown_op_is_invalid_syntax_naming_it(op: Any) -> None:
    """RFC 7644 3.5.2: "op" is one of add, remove, replace; the error names what was sent."""
    with pytest.raises(InvalidSyntax, match=repr(op)):
        patch(USER, {"op": op, "path": "title", "value": "x"})


@pytest.mark.parametrize("op", ["add", "Add", "ADD", "replace", "Replace", "REPLACE"])
def test_op_name_is_case_insensitive(op: str) -> None:
    """Entra sends "Add"/"Replace"/"Remove" capitalised; every case is accepted."""
    assert patch(USER, {"op": op, "path": "title", "value": "Tour Guide"}).doc["title"] == "Tour Guide"


@pytest.mark.parametrize("op", ["remove", "Remove", "REMOVE"])
def test_remove_op_name_is_case_insensitive(op: str) -> None:
    """Entra sends "Remove"; it is the RFC's "remove"."""
    assert "active" not in patch(USER, {"op": op, "path": "active"}).doc


def test_op_name_case_rewrite_is_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """Reading Entra's "Replace" as "replace" is logged at DEBUG."""
    patch(USER, {"op": "Replace", "path": "title", "value": "x"})
    assert "op-name-case" in rewrites(debug_log)


def test_path_must_be_a_string() -> None:
    """RFC 7644 3.5.2: "path" is a string."""
    with pytest.raises(InvalidSyntax, match="path"):
        patch(USER, {"op": "add", "path": ["title"], "value": "x"})


def test_body_member_names_are_case_insensitive() -> None:
    """RFC 7643 2.1: attribute names, including the message's own, are case-insensitive."""
    result = apply_patch(
        USER,
        {"Schemas": [PATCH_OP_SCHEMA], "operations": [{"OP": "add", "Path": "title", "Value": "x"}]},
        USER_TYPE,
    )
    assert result.doc["title"] == "x"


# --- atomicity and copies -------------------------------------------------------------------------


def test_input_document_is_never_mutated() -> None:
    """apply_patch returns a new document; the caller's copy is untouched."""
    before = copy.deepcopy(USER)
    patch(
        USER,
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
        {"op": "add", "path": "name.middleName", "value": "Jane"},
        {"op": "remove", "path": 'addresses[type eq "work"]'},
    )
    assert before == USER


def test_request_value_is_not_aliased_into_the_result() -> None:
    """Later changes to the request body cannot reach the returned document."""
    value = [{"value": "x@example.com", "type": "other"}]
    result = patch(USER, {"op": "add", "path": "emails", "value": value})
    value[0]["value"] = "changed"
    assert result.doc["emails"][-1]["value"] == "x@example.com"


def test_a_failing_operation_fails_the_whole_request() -> None:
    """RFC 7644 3.5.2: a PATCH is atomic; an error in any operation returns nothing."""
    before = copy.deepcopy(USER)
    with pytest.raises(NoTarget):
        patch(
            USER,
            {"op": "replace", "path": "title", "value": "x"},
            {"op": "replace", "path": 'emails[type eq "other"]', "value": {"value": "y@example.com"}},
        )
    assert before == USER


def test_operations_apply_in_order() -> None:
    """RFC 7644 3.5.2: each operation applies to the result of the previous one."""
    result = patch(
        USER,
        {"op": "add", "path": "title", "value": "first"},
        {"op": "replace", "path": "title", "value": "second"},
        {"op": "add", "path": "nickName", "value": "Babs"},
        {"op": "remove", "path": "nickName"},
    )
    assert result.doc["title"] == "second"
    assert "nickName" not in result.doc


# --- add (RFC 7644 3.5.2.1) -----------------------------------------------------------------------


def test_rfc_add_without_path_example() -> None:
    """RFC 7644 3.5.2.1: path-less add of emails and "nickname" (any case) adds to the resource."""
    result = patch(
        {"schemas": [USER_SCHEMA], "userName": "bjensen", "emails": [{"value": "bjensen@example.com", "type": "work"}]},
        {"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}},
    )
    assert result.doc == {
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@jensen.org", "type": "home"}],
        "nickName": "Babs",
    }
    assert result.changed


def test_add_sets_a_missing_attribute() -> None:
    """RFC 7644 3.5.2.1: if the target location does not exist, the attribute and value are added."""
    assert patch(USER, {"op": "add", "path": "title", "value": "Tour Guide"}).doc["title"] == "Tour Guide"


def test_add_replaces_a_single_valued_attribute() -> None:
    """RFC 7644 3.5.2.1: if the target location specifies a single-valued attribute, it is replaced."""
    assert patch(USER, {"op": "add", "path": "userName", "value": "babs"}).doc["userName"] == "babs"


def test_add_merges_a_complex_attribute() -> None:
    """RFC 7644 3.5.2.1: a complex target takes the given sub-attributes; others are kept."""
    result = patch(USER, {"op": "add", "path": "name", "value": {"middleName": "Jane", "givenName": "Babs"}})
    assert result.doc["name"] == {"givenName": "Babs", "familyName": "Jensen", "middleName": "Jane"}


def test_add_appends_to_a_multi_valued_attribute() -> None:
    """RFC 7644 3.5.2.1: if the target specifies a multi-valued attribute, a new value is added."""
    value = [{"value": "555-1234", "type": "work"}]
    result = patch(USER, {"op": "add", "path": "phoneNumbers", "value": value})
    assert result.doc["phoneNumbers"] == [{"value": "555-1234", "type": "work"}]


def test_add_skips_a_value_already_present() -> None:
    """RFC 7644 3.5.2.1: if the target already contains the value, no changes are made."""
    value = [{"value": "babs@jensen.org", "type": "home"}]
    result = patch(USER, {"op": "add", "path": "emails", "value": value})
    assert result.doc == USER
    assert not result.changed


def test_add_skips_duplicates_within_the_value() -> None:
    """RFC 7644 3.5.2.1: the same value given twice is added once."""
    value = [{"value": "r1"}, {"value": "r1"}]
    assert patch(USER, {"op": "add", "path": "roles", "value": value}).doc["roles"] == [{"value": "r1"}]


def test_add_a_lone_value_to_a_multi_valued_attribute() -> None:
    """Some clients send one object instead of a list for a multi-valued attribute; it is one value."""
    result = patch(USER, {"op": "add", "path": "roles", "value": {"value": "admin"}})
    assert result.doc["roles"] == [{"value": "admin"}]


def test_add_sub_attribute_of_a_complex_attribute() -> None:
    """RFC 7644 3.5.2: "name.middleName" addresses one sub-attribute."""
    result = patch(USER, {"op": "add", "path": "name.middleName", "value": "Jane"})
    assert result.doc["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}


def test_add_sub_attribute_creates_the_complex_attribute() -> None:
    """RFC 7644 3.5.2.1: a missing complex attribute is created to hold the sub-attribute."""
    doc = {"schemas": [USER_SCHEMA], "userName": "b"}
    result = patch(doc, {"op": "add", "path": "name.givenName", "value": "B"})
    assert result.doc["name"] == {"givenName": "B"}


def test_add_with_filter_and_sub_attribute_sets_matching_elements() -> None:
    """RFC 7644 3.5.2.1: addresses[type eq "work"].formatted sets formatted on each work address."""
    path = 'addresses[type eq "work"].formatted'
    result = patch(USER, {"op": "add", "path": path, "value": "100 Universal"})
    assert result.doc["addresses"] == [{**USER["addresses"][0], "formatted": "100 Universal"}]


def test_add_with_filter_creates_the_element_when_none_matches(debug_log: pytest.LogCaptureFixture) -> None:
    """Okta/Entra: a filtered add matching nothing creates the element its eq filter describes."""
    result = patch(USER, {"op": "add", "path": 'addresses[type eq "home"].formatted', "value": "1 Elm St"})
    assert result.doc["addresses"][-1] == {"type": "home", "formatted": "1 Elm St"}
    assert "create-from-filter" in rewrites(debug_log)


def test_create_from_filter_uses_every_eq_of_a_conjunction() -> None:
    """Okta/Entra: "type eq "work" and primary eq true" creates {"type": "work", "primary": true}."""
    doc = {"schemas": [USER_SCHEMA], "userName": "b"}
    result = patch(
        doc, {"op": "add", "path": 'phoneNumbers[type eq "work" and primary eq true].value', "value": "555-1234"}
    )
    assert result.doc["phoneNumbers"] == [{"type": "work", "primary": True, "value": "555-1234"}]


@pytest.mark.parametrize(
    "path",
    [
        'addresses[type co "ho"].formatted',
        'addresses[type eq "home" or type eq "other"].formatted',
        'addresses[not (type eq "work")].formatted',
        "addresses[type pr].formatted",
    ],
)
def test_add_with_filter_that_is_not_an_eq_conjunction_and_matches_nothing_is_no_target(path: str) -> None:
    """RFC 7644 3.5.2.1 is silent; only an eq conjunction says what to create, else noTarget."""
    doc = {"schemas": [USER_SCHEMA], "userName": "b"}
    with pytest.raises(NoTarget):
        patch(doc, {"op": "add", "path": path, "value": "x"})


def test_add_with_filter_merges_an_object_into_matching_elements() -> None:
    """RFC 7644 3.5.2.1: an object value for emails[type eq "work"] merges into the work email."""
    result = patch(USER, {"op": "add", "path": 'emails[type eq "work"]', "value": {"display": "Work"}})
    assert result.doc["emails"][0] == {
        "value": "bjensen@example.com",
        "type": "work",
        "primary": True,
        "display": "Work",
    }


def test_add_needs_a_value() -> None:
    """RFC 7644 3.5.2.1: the operation MUST contain a "value" member."""
    with pytest.raises(InvalidValue, match="value"):
        patch(USER, {"op": "add", "path": "title"})


def test_add_null_changes_nothing() -> None:
    """RFC 7643 2.5: null is unassigned, so adding null adds nothing."""
    result = patch(USER, {"op": "add", "path": "name", "value": None})
    assert not result.changed


# --- replace (RFC 7644 3.5.2.3) -------------------------------------------------------------------


def test_rfc_replace_without_path_example() -> None:
    """RFC 7644 3.5.2.3: path-less replace of emails and nickname."""
    value = {
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "nickname": "Babs",
    }
    doc = {"schemas": [USER_SCHEMA], "userName": "bjensen", "emails": [{"value": "old@example.com"}]}
    result = patch(doc, {"op": "replace", "value": value})
    assert result.doc == {
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "emails": value["emails"],
        "nickName": "Babs",
    }


def test_rfc_replace_work_address_example() -> None:
    """RFC 7644 3.5.2.3: replace addresses[type eq "work"] with a complete address."""
    address = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    result = patch(USER, {"op": "replace", "path": 'addresses[type eq "work"]', "value": address})
    assert result.doc["addresses"] == [address]


def test_rfc_replace_sub_attribute_of_filtered_elements_example() -> None:
    """RFC 7644 3.5.2.3: replace addresses[type eq "work"].streetAddress on every work address."""
    result = patch(
        USER, {"op": "replace", "path": 'addresses[type eq "work"].streetAddress', "value": "1010 Broadway Ave"}
    )
    assert result.doc["addresses"] == [{"type": "work", "streetAddress": "1010 Broadway Ave", "locality": "Hollywood"}]


def test_replace_with_filter_merges_into_matching_complex_elements() -> None:
    """RFC 7644 3.5.2.3: sub-attributes not in the value are left unchanged in each match."""
    result = patch(USER, {"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "b@j.org"}})
    assert result.doc["emails"][1] == {"value": "b@j.org", "type": "home"}


def test_replace_with_filter_replaces_every_match() -> None:
    """RFC 7644 3.5.2.3: all matching record values are replaced."""
    doc = {**USER, "roles": [{"value": "a", "type": "x"}, {"value": "b", "type": "x"}, {"value": "c"}]}
    result = patch(doc, {"op": "replace", "path": 'roles[type eq "x"].display', "value": "X"})
    assert result.doc["roles"] == [
        {"value": "a", "type": "x", "display": "X"},
        {"value": "b", "type": "x", "display": "X"},
        {"value": "c"},
    ]


def test_replace_multi_valued_without_filter_replaces_all_values() -> None:
    """RFC 7644 3.5.2.3: no filter on a multi-valued attribute replaces the attribute and all values."""
    result = patch(USER, {"op": "replace", "path": "emails", "value": [{"value": "only@example.com"}]})
    assert result.doc["emails"] == [{"value": "only@example.com"}]


def test_replace_complex_attribute_leaves_unnamed_sub_attributes() -> None:
    """RFC 7644 3.5.2.3: sub-attributes not specified in the value are left unchanged."""
    result = patch(USER, {"op": "replace", "path": "name", "value": {"givenName": "Babs"}})
    assert result.doc["name"] == {"givenName": "Babs", "familyName": "Jensen"}


def test_replace_missing_attribute_adds_it() -> None:
    """RFC 7644 3.5.2.3: a target that does not exist is treated as an add."""
    assert patch(USER, {"op": "replace", "path": "locale", "value": "en-US"}).doc["locale"] == "en-US"


def test_replace_with_filter_matching_nothing_is_no_target() -> None:
    """RFC 7644 3.5.2.3: a valuePath filter that matches no record fails with 400 noTarget."""
    with pytest.raises(NoTarget) as caught:
        patch(USER, {"op": "replace", "path": 'emails[type eq "other"]', "value": {"value": "x@example.com"}})
    assert caught.value.status == 400
    assert caught.value.scim_type == "noTarget"


def test_replace_filter_and_sub_attribute_creates_missing_element() -> None:
    """Okta/Entra send replace on emails[type eq "work"].value for a user with no work email."""
    doc = {"schemas": [USER_SCHEMA], "userName": "b", "emails": [{"value": "h@example.com", "type": "home"}]}
    result = patch(doc, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@example.com"})
    assert result.doc["emails"] == [
        {"value": "h@example.com", "type": "home"},
        {"type": "work", "value": "w@example.com"},
    ]


def test_replace_with_null_unassigns() -> None:
    """RFC 7643 2.5: replacing with null leaves the attribute unassigned."""
    result = patch(USER, {"op": "replace", "path": "name.givenName", "value": None})
    assert result.doc["name"] == {"familyName": "Jensen"}


def test_replace_needs_a_value() -> None:
    """RFC 7644 3.5.2.3: replace carries the new value."""
    with pytest.raises(InvalidValue):
        patch(USER, {"op": "replace", "path": "title"})


def test_replace_sub_attribute_of_unfiltered_multi_valued_sets_every_element() -> None:
    """RFC 7644 3.5.2.3: without a filter, the sub-attribute of every value is replaced."""
    result = patch(USER, {"op": "replace", "path": "emails.display", "value": "E"})
    assert [email["display"] for email in result.doc["emails"]] == ["E", "E"]


# --- remove (RFC 7644 3.5.2.2) --------------------------------------------------------------------


def test_remove_without_path_is_no_target() -> None:
    """RFC 7644 3.5.2.2: if "path" is unspecified, the operation fails with 400 noTarget."""
    with pytest.raises(NoTarget):
        patch(USER, {"op": "remove", "value": {"title": "x"}})


def test_remove_single_valued_attribute() -> None:
    """RFC 7644 3.5.2.2: a single-valued target is removed and becomes unassigned."""
    assert "active" not in patch(USER, {"op": "remove", "path": "active"}).doc


def test_remove_multi_valued_attribute_without_filter() -> None:
    """RFC 7644 3.5.2.2: no filter removes the attribute and all values."""
    assert "emails" not in patch(USER, {"op": "remove", "path": "emails"}).doc


def test_remove_sub_attribute() -> None:
    """RFC 7644 3.5.2.2: name.givenName removes that sub-attribute only."""
    assert patch(USER, {"op": "remove", "path": "name.givenName"}).doc["name"] == {"familyName": "Jensen"}


def test_remove_last_sub_attribute_unassigns_the_complex_attribute() -> None:
    """RFC 7643 2.5: a complex attribute with no sub-attributes left is unassigned (dropped)."""
    result = patch(USER, {"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"})
    assert "name" not in result.doc


def test_rfc_remove_with_complex_filter_example() -> None:
    """RFC 7644 3.5.2.2: remove emails[type eq "work" and value ew "example.com"]."""
    result = patch(USER, {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'})
    assert result.doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]


def test_remove_last_matching_element_unassigns_the_attribute() -> None:
    """RFC 7644 3.5.2.2: with no values remaining, the multi-valued attribute is unassigned."""
    assert "addresses" not in patch(USER, {"op": "remove", "path": 'addresses[type eq "work"]'}).doc


def test_remove_sub_attribute_of_filtered_elements() -> None:
    """RFC 7644 3.5.2.2: the sub-attribute of each matching record is removed."""
    result = patch(USER, {"op": "remove", "path": 'addresses[type eq "work"].locality'})
    assert result.doc["addresses"] == [{"type": "work", "streetAddress": "100 Universal City Plaza"}]


def test_remove_with_filter_matching_nothing_changes_nothing() -> None:
    """RFC 7644 3.5.2.2 names no error here; removing what is absent is idempotent."""
    result = patch(USER, {"op": "remove", "path": 'emails[type eq "other"]'})
    assert result == PatchResult(USER, (), False)


def test_remove_absent_attribute_changes_nothing() -> None:
    """Removing an unassigned attribute leaves the resource as it was."""
    assert not patch(USER, {"op": "remove", "path": "nickName"}).changed


def test_remove_with_value_list_on_multi_valued_path(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra: {"op":"Remove","path":"emails","value":[{"value":...}]} removes those values."""
    result = patch(USER, {"op": "Remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}]})
    assert result.doc["emails"] == [USER["emails"][0]]
    assert "remove-with-value" in rewrites(debug_log)


def test_remove_with_value_list_matches_on_value_only() -> None:
    """Entra: the remove value names elements by "value"; other sub-attributes given do not matter."""
    result = patch(
        USER, {"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "work", "$ref": None}]}
    )
    assert result.doc["emails"] == [USER["emails"][0]]


def test_remove_required_attribute_is_mutability_error() -> None:
    """RFC 7644 3.5.2: removing a required attribute fails with scimType mutability."""
    with pytest.raises(MutabilityError, match="userName"):
        patch(USER, {"op": "remove", "path": "userName"})


def test_replace_required_attribute_with_null_is_mutability_error() -> None:
    """RFC 7644 3.5.2: an attribute that becomes unassigned and is required fails with mutability."""
    with pytest.raises(MutabilityError, match="userName"):
        patch(USER, {"op": "replace", "path": "userName", "value": None})


def test_remove_then_add_required_attribute_in_one_request() -> None:
    """RFC 7644 3.5.2: only the request's result must hold the required attribute."""
    result = patch(USER, {"op": "remove", "path": "userName"}, {"op": "add", "path": "userName", "value": "babs"})
    assert result.doc["userName"] == "babs"


# --- path-less values and their keys --------------------------------------------------------------


def test_pathless_dotted_key(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra (pre-aadOptscim062020): {"op":"Add","value":{"name.givenName":"John"}}."""
    result = patch(USER, {"op": "Add", "value": {"name.givenName": "John"}})
    assert result.doc["name"] == {"givenName": "John", "familyName": "Jensen"}
    assert "path-keyed-value" in rewrites(debug_log)


def test_pathless_urn_qualified_key() -> None:
    """Entra: a path-less value keyed by a URN-qualified extension attribute."""
    result = patch(USER, {"op": "replace", "value": {f"{ENT}:employeeNumber": "42"}})
    assert result.doc[ENT] == {"employeeNumber": "42"}


def test_pathless_extension_object() -> None:
    """RFC 7644 3.5.2: a path-less value may carry an extension's attributes under its URN."""
    value = {ENT: {"department": "Tour Operations", "costCenter": "4130"}}
    result = patch(USER, {"op": "add", "value": value})
    assert result.doc[ENT] == {"department": "Tour Operations", "costCenter": "4130"}
    assert result.doc["schemas"] == [USER_SCHEMA, ENT]


def test_pathless_filter_key() -> None:
    """Entra: a path-less replace keyed by 'emails[type eq "work"].value' targets that path."""
    result = patch(USER, {"op": "replace", "value": {'emails[type eq "work"].value': "new@example.com"}})
    assert result.doc["emails"][0] == {"value": "new@example.com", "type": "work", "primary": True}


def test_pathless_id_is_ignored(debug_log: pytest.LogCaptureFixture) -> None:
    """Okta and Entra send the resource's id inside a path-less value; it is ignored, not rejected."""
    result = patch(USER, {"op": "replace", "value": {"id": "abf4dd94", "title": "x"}})
    assert "id" not in result.doc
    assert result.doc["title"] == "x"
    assert "server-attribute-ignored" in rewrites(debug_log)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("meta", {"resourceType": "User"}),
        ("groups", [{"value": "g1"}]),
        ("schemas", [USER_SCHEMA]),
        ("manager.displayName", "Boss"),
    ],
)
def test_pathless_read_only_attributes_are_ignored(key: str, value: Any) -> None:
    """RFC 7643 2.2: readOnly values in input are ignored; a path-less value may carry them."""
    result = patch(USER, {"op": "replace", "value": {key: value}})
    assert result == PatchResult(USER, (), False)


def test_pathless_unknown_attribute_is_invalid_path() -> None:
    """RFC 7644 3.5.2: an attribute the schema does not define cannot be a target."""
    with pytest.raises(InvalidPath, match="shoeSize"):
        patch(USER, {"op": "add", "value": {"shoeSize": 42}})


@pytest.mark.parametrize("value", ["x", ["title"], None, 3])
def test_pathless_value_must_be_an_object(value: Any) -> None:
    """RFC 7644 3.5.2.1/3.5.2.3: without a path the value is a set of attributes."""
    with pytest.raises(InvalidValue):
        patch(USER, {"op": "replace", "value": value})


def test_pathless_core_schema_key() -> None:
    """Some clients nest core attributes under the core schema URN; they are read as attributes."""
    result = patch(USER, {"op": "replace", "value": {USER_SCHEMA: {"title": "x"}}})
    assert result.doc["title"] == "x"


# --- paths ----------------------------------------------------------------------------------------


def test_attribute_names_in_paths_are_case_insensitive() -> None:
    """RFC 7643 2.1: attribute names are case-insensitive; the document keeps the declared casing."""
    result = patch(
        USER,
        {"op": "replace", "path": "NAME.GIVENNAME", "value": "B"},
        {"op": "add", "path": "NickName", "value": "Babs"},
    )
    assert result.doc["name"]["givenName"] == "B"
    assert result.doc["nickName"] == "Babs"
    assert "NickName" not in result.doc


def test_urn_qualified_path() -> None:
    """RFC 7644 3.5.2: a path may be qualified with its schema URN."""
    result = patch(USER, {"op": "add", "path": f"{ENT}:employeeNumber", "value": "701984"})
    assert result.doc[ENT] == {"employeeNumber": "701984"}
    assert result.doc["schemas"] == [USER_SCHEMA, ENT]


def test_core_urn_qualified_path() -> None:
    """RFC 7644 3.10: core attributes may be qualified with the core schema URN."""
    result = patch(USER, {"op": "replace", "path": f"{USER_SCHEMA}:name.familyName", "value": "J"})
    assert result.doc["name"]["familyName"] == "J"


def test_urn_qualified_sub_attribute_path() -> None:
    """RFC 7644 3.5.2: urn:...:User:manager.value addresses the manager's value."""
    result = patch(ENTERPRISE_USER, {"op": "replace", "path": f"{ENT}:manager.value", "value": "m2"})
    assert result.doc[ENT]["manager"] == {"value": "m2"}


def test_extension_urn_path_with_object_value() -> None:
    """A path that is an extension's URN addresses the extension object; its value is attributes."""
    result = patch(USER, {"op": "add", "path": ENT, "value": {"division": "Theme Park"}})
    assert result.doc[ENT] == {"division": "Theme Park"}


def test_remove_extension_urn_path_removes_the_extension() -> None:
    """A remove on the extension URN unassigns all its attributes and drops it from schemas."""
    result = patch(ENTERPRISE_USER, {"op": "remove", "path": ENT})
    assert ENT not in result.doc
    assert result.doc["schemas"] == [USER_SCHEMA]


def test_unqualified_extension_attribute(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra: "path": "employeeNumber" names the enterprise extension's attribute (no core one)."""
    result = patch(USER, {"op": "add", "path": "employeeNumber", "value": "7"})
    assert result.doc[ENT] == {"employeeNumber": "7"}
    assert "unqualified-extension-attribute" in rewrites(debug_log)


@pytest.mark.parametrize("path", ["shoeSize", "name.shoeSize", "urn:example:unknown:2.0:User:title"])
def test_unknown_path_is_invalid_path(path: str) -> None:
    """RFC 7644 3.5.2: a path naming no attribute fails with invalidPath."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "replace", "path": path, "value": "x"})


@pytest.mark.parametrize("path", ['emails[type eq "work"', "emails[type eq work]", "name..givenName", "emails]"])
def test_malformed_path_is_invalid_path(path: str) -> None:
    """RFC 7644 3.5.2: a path that does not parse fails with invalidPath."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "replace", "path": path, "value": "x"})


def test_filter_on_unknown_sub_attribute_is_invalid_path() -> None:
    """RFC 7644 3.5.2: a value filter may only name sub-attributes of the attribute."""
    with pytest.raises(InvalidPath, match="color"):
        patch(USER, {"op": "remove", "path": 'emails[color eq "red"]'})


def test_filter_on_simple_single_valued_attribute_is_invalid_path() -> None:
    """RFC 7644 3.5.2: a valuePath needs a multi-valued (or complex) attribute."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "remove", "path": 'title[value eq "x"]'})


def test_filter_that_cannot_apply_to_the_values_is_invalid_path() -> None:
    """RFC 7644 3.5.2: a path whose filter is invalid for the attribute fails with invalidPath."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "remove", "path": "emails[primary gt true]"})


def test_unknown_sub_attribute_after_filter_is_invalid_path() -> None:
    """RFC 7644 3.5.2: the sub-attribute after ']' must be declared."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "replace", "path": 'emails[type eq "work"].color', "value": "red"})


def test_empty_path_is_no_path() -> None:
    """Some clients send "path": ""; it is read as no path."""
    result = patch(USER, {"op": "replace", "path": "", "value": {"title": "x"}})
    assert result.doc["title"] == "x"


# --- mutability -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "id",
        "meta",
        "meta.created",
        "groups",
        'groups[value eq "g"].display',
        f"{ENT}:manager.displayName",
        "manager.displayName",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_path_is_mutability_error(op: str, path: str) -> None:
    """RFC 7644 3.5.2: a client MUST NOT modify a readOnly attribute (scimType mutability)."""
    with pytest.raises(MutabilityError) as caught:
        patch(USER, {"op": op, "path": path, "value": "x"})
    assert caught.value.scim_type == "mutability"


def test_read_only_sub_attributes_in_a_value_are_dropped() -> None:
    """RFC 7643 2.2: readOnly sub-attributes inside a value (manager.displayName) are ignored."""
    result = patch(
        ENTERPRISE_USER, {"op": "replace", "path": f"{ENT}:manager", "value": {"value": "m2", "displayName": "Boss"}}
    )
    assert result.doc[ENT]["manager"] == {"value": "m2"}


BADGE = Schema(
    "urn:example:params:scim:schemas:core:2.0:Badge",
    "Badge",
    "Badge",
    (
        Attribute("label", AttrType.STRING),
        Attribute("serial", AttrType.STRING, mutability=Mutability.IMMUTABLE),
        Attribute(
            "issuer",
            AttrType.COMPLEX,
            sub_attributes=(Attribute("value"), Attribute("key", mutability=Mutability.IMMUTABLE)),
        ),
    ),
)
BADGE_TYPE = ResourceType("Badge", "/Badges", "Badge", BADGE)


def test_immutable_attribute_may_be_added_when_unassigned() -> None:
    """RFC 7644 3.5.2: a client MAY add a value to an immutable attribute with no previous value."""
    result = patch({"schemas": [BADGE.id]}, {"op": "add", "path": "serial", "value": "S1"}, rt=BADGE_TYPE)
    assert result.doc["serial"] == "S1"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "serial", "value": "S2"},
        {"op": "replace", "path": "serial", "value": "S2"},
        {"op": "remove", "path": "serial"},
        {"op": "replace", "value": {"serial": "S2"}},
        {"op": "replace", "path": "issuer.key", "value": "k2"},
        {"op": "remove", "path": "issuer"},
    ],
)
def test_immutable_attribute_with_a_value_is_mutability_error(operation: dict[str, Any]) -> None:
    """RFC 7644 3.5.2: a client MUST NOT modify an immutable attribute that has a value."""
    doc = {"schemas": [BADGE.id], "serial": "S1", "issuer": {"value": "i", "key": "k1"}}
    with pytest.raises(MutabilityError):
        patch(doc, operation, rt=BADGE_TYPE)


def test_immutable_attribute_set_to_its_own_value_is_allowed() -> None:
    """RFC 7643 2.2: an immutable value given again unchanged is not a modification."""
    doc = {"schemas": [BADGE.id], "serial": "S1"}
    assert not patch(doc, {"op": "replace", "path": "serial", "value": "S1"}, rt=BADGE_TYPE).changed


# --- value normalisation --------------------------------------------------------------------------


def test_string_booleans_are_coerced(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra (pre-aadOptscim062020): {"op":"Replace","path":"active","value":"False"}."""
    result = patch(USER, {"op": "Replace", "path": "active", "value": "False"})
    assert result.doc["active"] is False
    assert "string-boolean" in rewrites(debug_log)


def test_string_boolean_sub_attribute_is_coerced(debug_log: pytest.LogCaptureFixture) -> None:
    """Okta/Entra send "primary": "True" inside multi-valued values."""
    value = [{"value": "555", "primary": "True"}]
    result = patch(USER, {"op": "add", "path": "phoneNumbers", "value": value})
    assert result.doc["phoneNumbers"] == [{"value": "555", "primary": True}]
    assert "string-boolean" in rewrites(debug_log)


def test_bare_value_for_complex_attribute_with_value_sub_attribute(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra sends the manager as a plain id; it becomes {"value": id}, and the rewrite is logged."""
    result = patch(USER, {"op": "Add", "path": f"{ENT}:manager", "value": "26118915"})
    assert result.doc[ENT] == {"manager": {"value": "26118915"}}
    assert "bare-value" in rewrites(debug_log)


def test_string_boolean_rewrite_is_logged_once(debug_log: pytest.LogCaptureFixture) -> None:
    """One rewrite, one log line: the engine leaves value rewrites to normalisation."""
    patch(USER, {"op": "Replace", "path": "active", "value": "False"})
    assert rewrites(debug_log).count("string-boolean") == 1


@pytest.mark.parametrize(
    ("path", "value"),
    [("active", "maybe"), ("title", 3), ("emails", [{"value": 5}]), ("name", "Barbara"), ("title", ["a"])],
)
def test_value_of_the_wrong_type_is_rejected(path: str, value: Any) -> None:
    """RFC 7644 3.12: a value incompatible with the attribute type fails with invalidValue."""
    with pytest.raises(InvalidValue):
        patch(USER, {"op": "replace", "path": path, "value": value})


def test_unknown_sub_attribute_in_a_value_is_rejected() -> None:
    """RFC 7643 2: a complex value may only carry declared sub-attributes."""
    with pytest.raises(ScimError, match="color"):
        patch(USER, {"op": "replace", "path": "name", "value": {"color": "red"}})


# --- primary (RFC 7643 2.4) -----------------------------------------------------------------------


def test_adding_a_primary_value_clears_primary_on_the_others() -> None:
    """RFC 7644 3.5.2: setting primary true on one value sets primary false on the others."""
    result = patch(
        USER, {"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": True}]}
    )
    assert [e.get("primary") for e in result.doc["emails"]] == [False, None, True]


def test_setting_primary_through_a_filter_clears_the_others() -> None:
    """RFC 7644 3.5.2: emails[type eq "home"].primary = true makes the home email the only primary."""
    result = patch(USER, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": True})
    assert [e.get("primary") for e in result.doc["emails"]] == [False, True]


def test_two_primary_values_in_one_value_are_rejected() -> None:
    """RFC 7643 2.4: the primary value true MUST appear no more than once."""
    with pytest.raises(InvalidValue, match="primary"):
        patch(
            USER,
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}],
            },
        )


# --- schemas and unassigned values ----------------------------------------------------------------


def test_extension_urn_is_added_to_schemas_when_it_gets_data() -> None:
    """RFC 7643 3: "schemas" lists the extensions the resource carries."""
    result = patch(USER, {"op": "add", "path": f"{ENT}:department", "value": "Tours"})
    assert result.doc["schemas"] == [USER_SCHEMA, ENT]


def test_extension_urn_is_removed_from_schemas_when_it_becomes_empty() -> None:
    """RFC 7643 3: an extension with no attributes left is dropped, with its URN."""
    result = patch(
        ENTERPRISE_USER, {"op": "remove", "path": f"{ENT}:employeeNumber"}, {"op": "remove", "path": f"{ENT}:manager"}
    )
    assert ENT not in result.doc
    assert result.doc["schemas"] == [USER_SCHEMA]


def test_empty_values_are_dropped() -> None:
    """RFC 7643 2.5: null, empty lists and empty objects are unassigned and not stored."""
    result = patch(
        USER, {"op": "replace", "path": "emails", "value": []}, {"op": "replace", "value": {"nickName": None}}
    )
    assert "emails" not in result.doc
    assert "nickName" not in result.doc


# --- changed --------------------------------------------------------------------------------------


def test_replace_with_the_same_value_is_not_a_change() -> None:
    """changed is False when the document comes out equal and there are no member operations."""
    result = patch(
        USER,
        {"op": "replace", "path": "userName", "value": "bjensen"},
        {"op": "replace", "path": "name", "value": {"givenName": "Barbara"}},
    )
    assert result == PatchResult(USER, (), False)


def test_a_real_change_is_reported() -> None:
    """changed is True when the document differs."""
    assert patch(USER, {"op": "replace", "path": "title", "value": "Guide"}).changed


# --- group membership -----------------------------------------------------------------------------


def test_rfc_add_member_example() -> None:
    """RFC 7644 3.5.2.1: add a member; display and $ref are not stored, the document is untouched."""
    result = patch_group(
        {
            "op": "add",
            "path": "members",
            "value": [{"display": "Babs Jensen", "$ref": f"https://example.com/v2/Users/{ALICE}", "value": ALICE}],
        }
    )
    assert result.member_ops == (MemberOp("add", ({"value": ALICE},)),)
    assert result.doc == GROUP
    assert result.changed


def test_rfc_remove_single_member_example() -> None:
    """RFC 7644 3.5.2.2: remove members[value eq "..."]."""
    result = patch_group({"op": "remove", "path": f'members[value eq "{ALICE}"]'})
    assert result.member_ops == (MemberOp("remove", ({"value": ALICE},)),)


def test_rfc_remove_all_members_example() -> None:
    """RFC 7644 3.5.2.2: remove "members" without a filter removes all members."""
    assert patch_group({"op": "remove", "path": "members"}).member_ops == (MemberOp("clear"),)


def test_rfc_remove_all_then_add_example() -> None:
    """RFC 7644 3.5.2.2: replace all members with remove then add, in order."""
    result = patch_group(
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"display": "James Smith", "value": JAMES}]},
    )
    assert result.member_ops == (MemberOp("clear"), MemberOp("add", ({"value": JAMES},)))


def test_rfc_replace_members_example() -> None:
    """RFC 7644 3.5.2.3: replace "members" clears the set, then adds the given members."""
    result = patch_group(
        {
            "op": "replace",
            "path": "members",
            "value": [
                {"display": "Babs Jensen", "$ref": f"https://example.com/v2/Users/{ALICE}", "value": ALICE},
                {"display": "James Smith", "$ref": f"https://example.com/v2/Users/{JAMES}", "value": JAMES},
            ],
        }
    )
    assert result.member_ops == (MemberOp("clear"), MemberOp("add", ({"value": ALICE}, {"value": JAMES})))


def test_replace_members_with_empty_list_clears() -> None:
    """RFC 7644 3.5.2.3: replacing members with nothing leaves none."""
    assert patch_group({"op": "replace", "path": "members", "value": []}).member_ops == (MemberOp("clear"),)


def test_entra_add_member_with_null_ref() -> None:
    """Entra: {"op":"Add","path":"members","value":[{"$ref":null,"value":"..."}]}."""
    value = [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}]
    result = patch_group({"op": "Add", "path": "members", "value": value})
    assert result.member_ops == (MemberOp("add", ({"value": "f648f8d5ea4e4cd38e9c"},)),)


def test_member_ref_and_display_ignored_are_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra's "$ref": null and Okta's display are dropped, and the log names them and the member."""
    patch_group({"op": "Add", "path": "members", "value": [{"$ref": None, "display": "Babs", "value": ALICE}]})
    assert f"member-fields-ignored: 'members' member {ALICE!r}: $ref, display ignored" in rewrites(debug_log)


def test_member_with_value_and_type_only_logs_nothing(debug_log: pytest.LogCaptureFixture) -> None:
    patch_group({"op": "add", "path": "members", "value": [{"value": ALICE, "type": "User"}]})
    assert rewrites(debug_log) == ""


def test_entra_remove_member_with_value_list(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra: {"op":"Remove","path":"members","value":[{"$ref":null,"value":"..."}]}."""
    result = patch_group({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ALICE}]})
    assert result.member_ops == (MemberOp("remove", ({"value": ALICE},)),)
    assert "remove-with-value" in rewrites(debug_log)


def test_member_type_is_kept_and_canonicalised() -> None:
    """RFC 7643 4.2: a member's type is "User" or "Group"; the client's casing is canonicalised."""
    result = patch_group(
        {"op": "add", "path": "members", "value": [{"value": "u1", "type": "user"}, {"value": "g1", "type": "Group"}]}
    )
    members = ({"value": "u1", "type": "User"}, {"value": "g1", "type": "Group"})
    assert result.member_ops == (MemberOp("add", members),)


@pytest.mark.parametrize(
    "member", [{"display": "x"}, {"value": 3}, {"value": ""}, "u1", None, {"value": "u1", "type": "Device"}]
)
def test_member_needs_a_string_value_and_known_type(member: Any) -> None:
    """RFC 7643 4.2: each member is an object with the member's id as a string "value"."""
    with pytest.raises(InvalidValue):
        patch_group({"op": "add", "path": "members", "value": [member]})


def test_member_values_given_twice_are_added_once() -> None:
    """The same member listed twice in one operation is one membership."""
    result = patch_group({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u1"}]})
    assert result.member_ops == (MemberOp("add", ({"value": "u1"},)),)


def test_remove_members_or_of_value_eq() -> None:
    """RFC 7644 3.5.2.2: members[value eq "a" or value eq "b"] removes both."""
    result = patch_group({"op": "remove", "path": 'members[value eq "a" or value eq "b"]'})
    assert result.member_ops == (MemberOp("remove", ({"value": "a"}, {"value": "b"})),)


def test_remove_members_with_other_filter_is_remove_where() -> None:
    """RFC 7644 3.5.2.2: other filters select members by sub-attributes; the store evaluates them."""
    result = patch_group({"op": "remove", "path": 'members[type eq "Group" and value sw "a"]'})
    expected = And(Compare(AttrPath(None, "type"), "eq", "Group"), Compare(AttrPath(None, "value"), "sw", "a"))
    assert result.member_ops == (MemberOp("remove_where", where=expected),)


def test_members_filter_on_unknown_sub_attribute_is_invalid_path() -> None:
    """RFC 7644 3.5.2: members[...] may only name members' sub-attributes."""
    with pytest.raises(InvalidPath):
        patch_group({"op": "remove", "path": 'members[email eq "x"]'})


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ("replace", 'members[value eq "u1"].display'),
        ("add", 'members[value eq "u1"].type'),
        ("replace", "members.value"),
        ("remove", 'members[value eq "u1"].type'),
        ("replace", 'members[value eq "u1"]'),
        ("add", 'members[value eq "u1"]'),
    ],
)
def test_modifying_a_member_in_place_is_mutability_error(op: str, path: str) -> None:
    """RFC 7643 4.2: member sub-attributes are immutable (display readOnly); add or remove instead."""
    with pytest.raises(MutabilityError):
        patch_group({"op": op, "path": path, "value": "x"})


def test_members_path_is_case_insensitive() -> None:
    """RFC 7643 2.1: "Members" is members."""
    result = patch_group({"op": "add", "path": "Members", "value": [{"value": "u1"}]})
    assert result.member_ops == (MemberOp("add", ({"value": "u1"},)),)


def test_pathless_replace_with_members() -> None:
    """RFC 7644 3.5.2.3: a path-less replace naming members replaces them and other attributes."""
    result = patch_group({"op": "replace", "value": {"displayName": "Guides", "members": [{"value": "u1"}]}})
    assert result.doc["displayName"] == "Guides"
    assert result.member_ops == (MemberOp("clear"), MemberOp("add", ({"value": "u1"},)))


def test_pathless_add_with_members() -> None:
    """RFC 7644 3.5.2.1: a path-less add naming members adds them."""
    result = patch_group({"op": "add", "value": {"members": [{"value": "u1", "display": "U"}]}})
    assert result.member_ops == (MemberOp("add", ({"value": "u1"},)),)


def test_add_remove_and_replace_of_members_come_out_in_order() -> None:
    """RFC 7644 3.5.2: operations apply in order, so member operations are returned in order."""
    result = patch_group(
        {"op": "add", "path": "members", "value": [{"value": "a"}]},
        {"op": "remove", "path": 'members[value eq "b"]'},
        {"op": "replace", "path": "members", "value": [{"value": "c"}]},
        {"op": "remove", "path": "members", "value": [{"value": "c"}]},
    )
    assert result.member_ops == (
        MemberOp("add", ({"value": "a"},)),
        MemberOp("remove", ({"value": "b"},)),
        MemberOp("clear"),
        MemberOp("add", ({"value": "c"},)),
        MemberOp("remove", ({"value": "c"},)),
    )


def test_group_document_never_holds_members() -> None:
    """Members live in the store's rows, never in the group document."""
    result = patch_group(
        {"op": "add", "value": {"members": [{"value": "u1"}]}},
        {"op": "replace", "path": "members", "value": [{"value": "u2"}]},
    )
    assert "members" not in result.doc


def test_remove_members_with_empty_value_list_changes_nothing() -> None:
    """Removing no members is no operation."""
    assert patch_group({"op": "remove", "path": "members", "value": []}) == PatchResult(GROUP, (), False)


def test_users_have_no_member_operations() -> None:
    """A User has no members attribute; member operations only come from Groups."""
    with pytest.raises(InvalidPath):
        patch(USER, {"op": "add", "path": "members", "value": [{"value": "u1"}]})


def test_removing_group_display_name_is_mutability_error() -> None:
    """RFC 7644 3.5.2: Group displayName is required; removing it fails with mutability."""
    with pytest.raises(MutabilityError):
        patch_group({"op": "remove", "path": "displayName"})


# --- real IdP request bodies ----------------------------------------------------------------------


def test_okta_deactivate_user() -> None:
    """Okta: {"op":"replace","value":{"active":false}} deactivates the user."""
    assert patch(USER, {"op": "replace", "value": {"active": False}}).doc["active"] is False


def test_okta_update_group_name_with_id_in_value() -> None:
    """Okta: {"op":"replace","value":{"id":"...","displayName":"Test SCIMv2"}} renames the group."""
    result = patch_group(
        {"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}
    )
    assert result.doc == {"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2"}
    assert result.member_ops == ()


def test_okta_add_group_members() -> None:
    """Okta: {"op":"add","path":"members","value":[{"value":"...","display":"user@okta.local"}]}."""
    result = patch_group(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}],
        }
    )
    assert result.member_ops == (MemberOp("add", ({"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"},)),)


def test_okta_remove_group_member() -> None:
    """Okta: {"op":"remove","path":"members[value eq \\"...\\"]"}."""
    result = patch_group({"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'})
    assert result.member_ops == (MemberOp("remove", ({"value": "89bb1940-b905-4575-9e7f-6f887cfb368e"},)),)


def test_okta_update_password() -> None:
    """Okta: {"op":"replace","value":{"password":"..."}} sets the writeOnly password."""
    result = patch(USER, {"op": "replace", "value": {"password": "t1meMa$heen"}})
    assert result.doc["password"] == "t1meMa$heen"


def test_entra_update_user_multi_valued_properties() -> None:
    """Entra: Replace emails[type eq "work"].value and name.familyName in one request."""
    result = patch(
        USER,
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert result.doc["emails"][0] == {"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}
    assert result.doc["name"] == {"givenName": "Barbara", "familyName": "updatedFamilyName"}


def test_entra_update_user_single_valued_property() -> None:
    """Entra: {"op":"Replace","path":"userName","value":"...@testuser.com"}."""
    result = patch(USER, {"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"})
    assert result.doc["userName"] == "5b50642d@testuser.com"


def test_entra_disable_user() -> None:
    """Entra: {"op":"Replace","path":"active","value":false}."""
    assert patch(USER, {"op": "Replace", "path": "active", "value": False}).doc["active"] is False


def test_entra_pathless_replace_of_many_attributes() -> None:
    """Entra (aadOptscim062020): a path-less replace keyed by attribute paths of every kind."""
    result = patch(
        USER,
        {
            "op": "replace",
            "value": {
                "displayName": "Pvlo",
                'emails[type eq "work"].value': "TestBcwqnm@test.microsoft.com",
                "name.givenName": "Gtfd",
                "name.familyName": "Pkqf",
                "externalId": "Eqpj",
                f"{ENT}:employeeNumber": "Eqpj",
            },
        },
    )
    assert result.doc["displayName"] == "Pvlo"
    assert result.doc["emails"][0]["value"] == "TestBcwqnm@test.microsoft.com"
    assert result.doc["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
    assert result.doc["externalId"] == "Eqpj"
    assert result.doc[ENT] == {"employeeNumber": "Eqpj"}
    assert result.doc["schemas"] == [USER_SCHEMA, ENT]


def test_entra_update_group_display_name() -> None:
    """Entra: {"op":"Replace","path":"displayName","value":"...updatedDisplayName"}."""
    result = patch_group({"op": "Replace", "path": "displayName", "value": "updatedDisplayName"})
    assert result.doc["displayName"] == "updatedDisplayName"


def test_entra_add_manager() -> None:
    """Entra: {"op":"Add","path":"urn:...:enterprise:2.0:User:manager","value":"<id>"}."""
    result = patch(ENTERPRISE_USER, {"op": "Add", "path": f"{ENT}:manager", "value": "m2"})
    assert result.doc[ENT]["manager"] == {"value": "m2"}


def test_entra_remove_unqualified_manager() -> None:
    """Entra: {"op":"remove","path":"manager"}; manager is only in the enterprise extension."""
    result = patch(ENTERPRISE_USER, {"op": "remove", "path": "manager"})
    assert result.doc[ENT] == {"employeeNumber": "701984"}


def test_remove_single_valued_complex_with_matching_filter() -> None:
    """manager[value eq "x"] treats the filter as applying to the single manager value."""
    manager = ENTERPRISE_USER[ENT]["manager"]["value"]
    result = patch(ENTERPRISE_USER, {"op": "remove", "path": f'{ENT}:manager[value eq "{manager}"]'})
    assert result.doc[ENT] == {"employeeNumber": "701984"}


def test_remove_single_valued_complex_with_other_filter_keeps_it() -> None:
    """manager[value eq "x"] removes nothing when the manager is someone else."""
    result = patch(ENTERPRISE_USER, {"op": "remove", "path": 'manager[value eq "someone-else"]'})
    assert result == PatchResult(ENTERPRISE_USER, (), False)


def test_entra_remove_last_extension_attribute_drops_schema() -> None:
    """Entra removes extension attributes one by one; the last one drops the extension URN."""
    doc = {"schemas": [USER_SCHEMA, ENT], "userName": "b", ENT: {"department": "x"}}
    result = patch(doc, {"op": "Remove", "path": f"{ENT}:department"})
    assert result.doc == {"schemas": [USER_SCHEMA], "userName": "b"}


def test_extension_value_may_carry_its_own_schemas() -> None:
    """scim2-models serialises an extension with its "schemas"; that key is the server's, not an attribute."""
    value = {"schemas": [ENT], "costCenter": "4130"}
    result = patch(ENTERPRISE_USER, {"op": "add", "path": ENT, "value": value})
    assert result.doc[ENT]["costCenter"] == "4130"
    assert "schemas" not in result.doc[ENT]


def test_operations_that_walk_too_many_values_are_too_many() -> None:
    """Issue 11, item 1: each filtered replace walks every e-mail; 51 of them on 1,000 e-mails walk
    more than ``MAX_PATCH_VALUE_VISITS`` (50,000) values: 400 tooMany, before the CPU is spent."""
    doc = {
        "schemas": [USER_SCHEMA],
        "userName": "a",
        "emails": [{"value": f"u{n}@example.com", "type": "work"} for n in range(1000)],
    }
    ops = [{"op": "replace", "path": f'emails[value eq "u{n}@example.com"].type', "value": "home"} for n in range(51)]
    with pytest.raises(TooMany):
        apply_patch(doc, {"schemas": [PATCH_OP_SCHEMA], "Operations": ops}, USER_TYPE)
    assert apply_patch(doc, {"schemas": [PATCH_OP_SCHEMA], "Operations": ops[:50]}, USER_TYPE).changed
