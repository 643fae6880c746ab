"""Validation, normalisation and rendering of SCIM resources (scimward.scim.resource)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from scimward.scim.ast import AttrPath
from scimward.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, MutabilityError
from scimward.scim.resource import (
    check_immutable,
    check_required,
    find_attribute,
    normalize,
    normalize_value,
    parse_attribute_list,
    render,
)
from scimward.scim.resource_types import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER,
    USER_SCHEMA,
    USER_TYPE,
)
from scimward.scim.schema import (
    Attribute,
    AttrType,
    Mutability,
    ResourceType,
    Returned,
    Schema,
    SchemaExtension,
)

ENT = ENTERPRISE_USER_SCHEMA
ENTRA_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

# A made-up resource type exercising characteristics the RFC 7643 schemas do not use.
WIDGET_SCHEMA = "urn:example:params:scim:schemas:core:2.0:Widget"
ACME = "urn:example:params:scim:schemas:extension:acme:2.0:Widget"
WIDGET_TYPE = ResourceType(
    "Widget",
    "/Widgets",
    "Widget",
    Schema(
        WIDGET_SCHEMA,
        "Widget",
        "Widget",
        (
            Attribute("label", required=True),
            Attribute("count", AttrType.INTEGER),
            Attribute("ratio", AttrType.DECIMAL),
            Attribute("since", AttrType.DATETIME),
            Attribute("blob", AttrType.BINARY),
            Attribute("serial", mutability=Mutability.IMMUTABLE),
            Attribute("secret", returned=Returned.REQUEST),
            Attribute(
                "part",
                AttrType.COMPLEX,
                sub_attributes=(
                    Attribute("code", required=True),
                    Attribute("note"),
                    Attribute("kind", mutability=Mutability.IMMUTABLE),
                    Attribute("ref", returned=Returned.ALWAYS),
                    Attribute("extra", returned=Returned.REQUEST),
                ),
            ),
        ),
    ),
    (SchemaExtension(Schema(ACME, "Acme", "Acme", (Attribute("owner", required=True),)), required=True),),
)


def user(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen", **attrs}


def widget(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [WIDGET_SCHEMA, ACME], "label": "w", ACME: {"owner": "o"}, **attrs}


def stored_user(**attrs: Any) -> dict[str, Any]:
    """A doc as the store hands it to render: with id and meta."""
    doc = normalize(user(**attrs), USER_TYPE)
    return {**doc, "id": "2819c223", "meta": {"resourceType": "User", "version": 'W/"1"'}}


def rewrites(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The rewrites normalisation logged, one message each."""
    return [r.getMessage() for r in caplog.records if r.name == "scimward.scim.resource"]


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scimward.scim")
    return caplog


# ------------------------------------------------------------------------------------ normalize: shape


def test_body_must_be_an_object() -> None:
    """RFC 7644 3.3: the request body is a JSON object representing the resource."""
    with pytest.raises(InvalidSyntax):
        normalize(["userName"], USER_TYPE)


def test_schemas_is_required() -> None:
    """RFC 7643 3: "schemas" is REQUIRED."""
    with pytest.raises(InvalidSyntax, match="schemas"):
        normalize({"userName": "bjensen"}, USER_TYPE)


def test_schemas_must_be_a_list_of_strings() -> None:
    """RFC 7643 3: "schemas" is a multi-valued list of strings."""
    with pytest.raises(InvalidSyntax, match="schemas"):
        normalize({"schemas": USER_SCHEMA, "userName": "bjensen"}, USER_TYPE)


def test_schemas_must_include_the_core_schema() -> None:
    """RFC 7643 3: "schemas" lists the URIs of the schemas the resource uses, its core schema included."""
    with pytest.raises(InvalidSyntax, match=USER_SCHEMA):
        normalize({"schemas": [GROUP_SCHEMA], "userName": "bjensen"}, USER_TYPE)


def test_schema_urns_compare_case_insensitively() -> None:
    """RFC 7643 2.1 / RFC 8141: URNs are matched case-insensitively; the doc uses the declared case."""
    doc = normalize({"schemas": [USER_SCHEMA.upper()], "userName": "bjensen"}, USER_TYPE)
    assert doc["schemas"] == [USER_SCHEMA]


def test_unknown_urn_in_schemas_is_dropped() -> None:
    """Entra lists its own ADSCIM schema on Groups; tolerate and drop it (RFC 7644 3.3 is lenient)."""
    doc = normalize({"schemas": [GROUP_SCHEMA, ENTRA_GROUP], "displayName": "Admins"}, GROUP_TYPE)
    assert doc == {"schemas": [GROUP_SCHEMA], "displayName": "Admins"}


def test_unknown_urn_as_key_is_rejected() -> None:
    """RFC 7643 3.3: extension attributes live under a declared extension's URN; others are errors."""
    with pytest.raises(InvalidSyntax, match="urn:example:unknown"):
        normalize(user(**{"urn:example:unknown": {"x": 1}}), USER_TYPE)


def test_attribute_names_are_case_insensitive_and_canonicalised() -> None:
    """RFC 7643 2.1: attribute names are case-insensitive; the doc uses the declared casing."""
    doc = normalize({"SCHEMAS": [USER_SCHEMA], "USERNAME": "bjensen", "Name": {"GIVENNAME": "Barbara"}}, USER_TYPE)
    assert doc == {"schemas": [USER_SCHEMA], "userName": "bjensen", "name": {"givenName": "Barbara"}}


def test_unknown_attribute_is_rejected() -> None:
    """RFC 7644 3.12 invalidSyntax: the request body does not conform to the schema."""
    with pytest.raises(InvalidSyntax, match="unknown attribute 'fooBar' for resource type User"):
        normalize(user(fooBar=1), USER_TYPE)


def test_unknown_sub_attribute_is_rejected() -> None:
    """RFC 7643 2.3.8: a complex attribute holds only its declared sub-attributes."""
    with pytest.raises(InvalidSyntax, match=re.escape("name.nick")):
        normalize(user(name={"nick": "Babs"}), USER_TYPE)


def test_same_attribute_twice_in_different_case_is_rejected() -> None:
    """RFC 7643 2.1: "userName" and "USERNAME" name the same attribute, which may appear only once."""
    with pytest.raises(InvalidSyntax, match="more than once"):
        normalize({**user(), "USERNAME": "other"}, USER_TYPE)


def test_extension_attributes_are_nested_under_the_canonical_urn() -> None:
    """RFC 7643 3.3: extension attributes are in a sub-object keyed by the extension URN."""
    doc = normalize(
        {"schemas": [USER_SCHEMA, ENT], "userName": "bjensen", ENT.lower(): {"EmployeeNumber": "701984"}}, USER_TYPE
    )
    assert doc == {"schemas": [USER_SCHEMA, ENT], "userName": "bjensen", ENT: {"employeeNumber": "701984"}}


def test_extension_present_but_not_listed_in_schemas_is_added() -> None:
    """RFC 7643 3: "schemas" must list the extensions used; be lenient and complete it."""
    doc = normalize(user(**{ENT: {"department": "R&D"}}), USER_TYPE)
    assert doc["schemas"] == [USER_SCHEMA, ENT]


def test_extension_listed_without_data_is_not_in_schemas() -> None:
    """RFC 7643 3: "schemas" lists only the schemas whose attributes the resource holds."""
    doc = normalize({"schemas": [USER_SCHEMA, ENT], "userName": "bjensen", ENT: {}}, USER_TYPE)
    assert doc == {"schemas": [USER_SCHEMA], "userName": "bjensen"}


def test_extension_value_must_be_an_object() -> None:
    """RFC 7643 3.3: the extension URN holds a JSON object of its attributes."""
    with pytest.raises(InvalidSyntax, match=re.escape(ENT)):
        normalize(user(**{ENT: "701984"}), USER_TYPE)


def test_unknown_extension_attribute_is_rejected() -> None:
    """RFC 7643 3.3: only attributes the extension schema declares may appear under it."""
    with pytest.raises(InvalidSyntax, match="unknown attribute 'badge'"):
        normalize(user(**{ENT: {"badge": "x"}}), USER_TYPE)


# ------------------------------------------------------------------------------------ normalize: readOnly


def test_id_and_meta_are_ignored() -> None:
    """RFC 7643 3.1: id and meta are assigned by the service provider; client values are ignored."""
    doc = normalize(user(id="client-id", meta={"resourceType": "User"}), USER_TYPE)
    assert "id" not in doc and "meta" not in doc


def test_read_only_attribute_is_ignored() -> None:
    """RFC 7643 2.2: readOnly values in a request SHALL be ignored (User.groups)."""
    doc = normalize(user(groups=[{"value": "g1"}]), USER_TYPE)
    assert "groups" not in doc


def test_read_only_sub_attributes_are_ignored() -> None:
    """RFC 7643 2.2, 4.3, 8.7.1: members.display and manager.displayName are readOnly."""
    doc = normalize(
        {"schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": [{"value": "u1", "display": "Babs"}]},
        GROUP_TYPE,
    )
    assert doc["members"] == [{"value": "u1"}]
    doc = normalize(user(**{ENT: {"manager": {"value": "m1", "displayName": "Boss"}}}), USER_TYPE)
    assert doc[ENT] == {"manager": {"value": "m1"}}


def test_complex_value_holding_only_read_only_parts_is_dropped() -> None:
    """RFC 7643 2.5: once readOnly parts are ignored an empty object is unassigned."""
    doc = normalize(user(**{ENT: {"manager": {"displayName": "Boss"}}}), USER_TYPE)
    assert doc == {"schemas": [USER_SCHEMA], "userName": "bjensen"}


def test_password_is_kept_in_the_doc() -> None:
    """RFC 7643 4.1.1: password is writeOnly: accepted on input (the store hashes it), never returned."""
    assert normalize(user(password="t1meMa$heen"), USER_TYPE)["password"] == "t1meMa$heen"


# ------------------------------------------------------------------------------------ normalize: types


def test_string_attribute_must_be_a_string() -> None:
    """RFC 7643 2.3.1: a string is a sequence of characters."""
    with pytest.raises(InvalidValue, match="attribute 'displayName' must be a string"):
        normalize(user(displayName=5), USER_TYPE)


def test_boolean_attribute() -> None:
    """RFC 7643 2.3.2: a boolean is true or false."""
    assert normalize(user(active=True), USER_TYPE)["active"] is True
    with pytest.raises(InvalidValue, match="attribute 'active' must be a boolean"):
        normalize(user(active=1), USER_TYPE)


@pytest.mark.parametrize(("sent", "stored"), [("False", False), ("TRUE", True), ("true", True)])
def test_string_booleans_are_coerced(sent: str, stored: bool) -> None:
    """Okta and Entra send "True"/"False"; RFC 7643 2.3.2 wants a boolean, so coerce."""
    assert normalize(user(active=sent), USER_TYPE)["active"] is stored


def test_other_strings_are_not_booleans() -> None:
    """RFC 7643 2.3.2: only true and false are booleans."""
    with pytest.raises(InvalidValue, match="active"):
        normalize(user(active="yes"), USER_TYPE)


def test_integer_attribute() -> None:
    """RFC 7643 2.3.4: an integer has no fractional part; a boolean is not an integer."""
    assert normalize(widget(count=3), WIDGET_TYPE)["count"] == 3
    for bad in (1.5, True, "3"):
        with pytest.raises(InvalidValue, match="attribute 'count' must be an integer"):
            normalize(widget(count=bad), WIDGET_TYPE)


def test_decimal_attribute() -> None:
    """RFC 7643 2.3.3: a decimal is a real number; integers are decimals too, booleans are not."""
    assert normalize(widget(ratio=0.5), WIDGET_TYPE)["ratio"] == 0.5
    assert normalize(widget(ratio=2), WIDGET_TYPE)["ratio"] == 2
    with pytest.raises(InvalidValue, match="ratio"):
        normalize(widget(ratio=False), WIDGET_TYPE)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
        ("2026-01-02T04:04:05+01:00", "2026-01-02T03:04:05Z"),
        ("2026-01-01T22:04:05-05:00", "2026-01-02T03:04:05Z"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05Z"),
        ("2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.500Z"),
        ("2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.123456Z"),
    ],
)
def test_date_time_is_normalised_to_utc(sent: str, stored: str) -> None:
    """RFC 7643 2.3.5: dateTime is an xsd:dateTime; stored in UTC with "Z", fractional seconds kept."""
    assert normalize(widget(since=sent), WIDGET_TYPE)["since"] == stored


@pytest.mark.parametrize("bad", ["2026-01-02", "2026-13-02T03:04:05Z", "yesterday", 1767322645, "2026-01-02 03:04:05Z"])
def test_invalid_date_time_is_rejected(bad: Any) -> None:
    """RFC 7643 2.3.5: a dateTime must be a valid xsd:dateTime with date and time."""
    with pytest.raises(InvalidValue, match="attribute 'since' must be an xsd:dateTime"):
        normalize(widget(since=bad), WIDGET_TYPE)


def test_binary_and_reference_are_strings() -> None:
    """RFC 7643 2.3.6, 2.3.7: binary (base64) and reference values are JSON strings."""
    assert normalize(widget(blob="AAEC"), WIDGET_TYPE)["blob"] == "AAEC"
    with pytest.raises(InvalidValue, match="profileUrl"):
        normalize(user(profileUrl=["https://x"]), USER_TYPE)


def test_complex_attribute_must_be_an_object() -> None:
    """RFC 7643 2.3.8: a complex value is a JSON object (name has no "value" to stand for)."""
    with pytest.raises(InvalidValue, match="attribute 'name' must be a complex value"):
        normalize(user(name="Barbara Jensen"), USER_TYPE)


def test_sub_attribute_types_are_checked() -> None:
    """RFC 7643 2.3.8: sub-attributes have their declared type too; the error names the path."""
    with pytest.raises(InvalidValue, match=re.escape("attribute 'emails.primary' must be a boolean")):
        normalize(user(emails=[{"value": "b@example.com", "primary": "maybe"}]), USER_TYPE)


# ------------------------------------------------------------------------------------ normalize: plurality


def test_list_for_single_valued_attribute_is_rejected() -> None:
    """RFC 7643 2.4: a single-valued attribute holds one value."""
    with pytest.raises(InvalidValue, match="attribute 'displayName' is single-valued"):
        normalize(user(displayName=["Babs"]), USER_TYPE)


def test_lone_value_for_multi_valued_attribute_is_wrapped() -> None:
    """RFC 7643 2.4: multi-valued attributes are arrays; a lone value is accepted as a one-item array."""
    doc = normalize(user(emails={"value": "b@example.com"}), USER_TYPE)
    assert doc["emails"] == [{"value": "b@example.com"}]


def test_bare_value_for_multi_valued_complex_attribute() -> None:
    """RFC 7643 2.4: "value" is the default sub-attribute; a bare string means {"value": ...}."""
    doc = normalize(
        {"schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": ["u1", {"value": "u2"}]}, GROUP_TYPE
    )
    assert doc["members"] == [{"value": "u1"}, {"value": "u2"}]


def test_manager_given_as_plain_id() -> None:
    """Entra and Okta send manager as the id string; RFC 7643 4.3 wants {"value": id}."""
    doc = normalize(user(**{ENT: {"manager": "26118915"}}), USER_TYPE)
    assert doc[ENT] == {"manager": {"value": "26118915"}}


def test_nulls_and_empty_lists_are_unassigned() -> None:
    """RFC 7643 2.5: null, an empty array and an unassigned attribute are equivalent."""
    doc = normalize(user(displayName=None, emails=[], name={"givenName": None}, phoneNumbers=[None]), USER_TYPE)
    assert doc == {"schemas": [USER_SCHEMA], "userName": "bjensen"}


def test_only_one_primary_value() -> None:
    """RFC 7643 2.4: the primary attribute value "true" MUST appear no more than once."""
    emails = [{"value": "a@example.com", "primary": True}, {"value": "b@example.com", "primary": "True"}]
    with pytest.raises(InvalidValue, match="more than one value with primary true"):
        normalize(user(emails=emails), USER_TYPE)


def test_one_primary_value_is_fine() -> None:
    """RFC 7643 2.4: one primary value, others false or absent."""
    emails = [{"value": "a@example.com", "primary": True}, {"value": "b@example.com", "primary": False}]
    assert normalize(user(emails=emails), USER_TYPE)["emails"] == emails


def test_canonical_values_are_not_enforced() -> None:
    """RFC 7643 2.3.1/7: canonicalValues are suggestions; service providers MAY accept others."""
    doc = normalize(user(emails=[{"value": "b@example.com", "type": "Custom"}]), USER_TYPE)
    assert doc["emails"] == [{"value": "b@example.com", "type": "Custom"}]


# ------------------------------------------------------------------------------------ required


def test_required_attribute_missing() -> None:
    """RFC 7643 2.2, 4.1.1: userName is required."""
    with pytest.raises(InvalidValue, match="attribute 'userName' is required"):
        normalize({"schemas": [USER_SCHEMA], "displayName": "Babs"}, USER_TYPE)


def test_required_attribute_null_counts_as_missing() -> None:
    """RFC 7643 2.5: null is unassigned, so a required attribute set to null is missing."""
    with pytest.raises(InvalidValue, match="attribute 'displayName' is required"):
        normalize({"schemas": [GROUP_SCHEMA], "displayName": None}, GROUP_TYPE)


def test_required_sub_attribute_missing() -> None:
    """RFC 7643 2.2: a required sub-attribute must be present within a present complex value."""
    with pytest.raises(InvalidValue, match=re.escape("attribute 'part.code' is required")):
        normalize(widget(part={"note": "n"}), WIDGET_TYPE)


def test_required_extension_attribute_missing() -> None:
    """RFC 7643 6: a required extension MUST be present with its required attributes."""
    with pytest.raises(InvalidValue, match=re.escape(f"attribute '{ACME}:owner' is required")):
        normalize({"schemas": [WIDGET_SCHEMA], "label": "w"}, WIDGET_TYPE)


def test_check_required_after_patch() -> None:
    """RFC 7644 3.5.2: a PATCH leaving a required attribute unassigned fails with invalidValue."""
    check_required({"schemas": [USER_SCHEMA], "userName": "b"}, USER_TYPE)
    with pytest.raises(InvalidValue, match="userName"):
        check_required({"schemas": [USER_SCHEMA]}, USER_TYPE)


# ------------------------------------------------------------------------------------ normalize_value


def test_normalize_value_multi_valued_single_element() -> None:
    """RFC 7644 3.5.2.1: a PATCH add value for a multi-valued attribute may be one value."""
    emails = USER.attribute("emails")
    assert emails is not None
    assert normalize_value(emails, {"VALUE": "b@example.com"}, "emails") == [{"value": "b@example.com"}]


def test_normalize_value_null_is_none() -> None:
    """RFC 7643 2.5: null means unassigned."""
    name = USER.attribute("name")
    assert name is not None
    assert normalize_value(name, None, "name") is None


def test_normalize_value_uses_the_given_path_in_errors() -> None:
    """RFC 7644 3.12: the detail names the offending attribute as the request spelled its path."""
    active = USER.attribute("active")
    assert active is not None
    with pytest.raises(InvalidValue, match="attribute 'ACTIVE' must be a boolean"):
        normalize_value(active, 3, "ACTIVE")


# ------------------------------------------------------------------------------------ immutable


def test_immutable_attribute_cannot_change() -> None:
    """RFC 7643 2.2: an immutable attribute SHALL NOT be updated once set."""
    with pytest.raises(MutabilityError, match="serial"):
        check_immutable(widget(serial="A1"), widget(serial="B2"), WIDGET_TYPE)


def test_immutable_attribute_cannot_be_removed() -> None:
    """RFC 7643 2.2: removing an immutable value is an update."""
    with pytest.raises(MutabilityError, match="serial"):
        check_immutable(widget(serial="A1"), widget(), WIDGET_TYPE)


def test_immutable_attribute_may_be_set_once_or_kept() -> None:
    """RFC 7643 2.2: an immutable attribute MAY be defined when unset; equal values are not updates
    (caseExact=false strings compare case-insensitively, RFC 7643 2.3.1)."""
    check_immutable(widget(), widget(serial="A1"), WIDGET_TYPE)
    check_immutable(widget(serial="A1"), widget(serial="a1"), WIDGET_TYPE)


def test_immutable_sub_attribute_cannot_change() -> None:
    """RFC 7643 2.2: mutability applies to sub-attributes of complex values too."""
    with pytest.raises(MutabilityError, match=re.escape("part.kind")):
        check_immutable(widget(part={"code": "c", "kind": "k1"}), widget(part={"code": "c", "kind": "k2"}), WIDGET_TYPE)
    check_immutable(widget(part={"code": "c", "kind": "k1"}), widget(part={"code": "d", "kind": "k1"}), WIDGET_TYPE)


def test_group_members_are_not_checked_for_immutability() -> None:
    """RFC 7643 4.2: members' sub-attributes are immutable, but members are added and removed whole."""
    old = {"schemas": [GROUP_SCHEMA], "displayName": "A", "members": [{"value": "u1"}]}
    check_immutable(old, {**old, "members": [{"value": "u2"}]}, GROUP_TYPE)


# ------------------------------------------------------------------------------------ find_attribute


def test_find_core_attribute_case_insensitively() -> None:
    """RFC 7643 2.1: attribute names in paths are case-insensitive."""
    urn, attr, sub = find_attribute(USER_TYPE, AttrPath(None, "USERNAME"))
    assert (urn, attr.name, sub) == (None, "userName", None)


def test_find_sub_attribute() -> None:
    """RFC 7644 3.10: "name.givenName" names a sub-attribute."""
    urn, attr, sub = find_attribute(USER_TYPE, AttrPath(None, "name", "givenname"))
    assert (urn, attr.name, sub and sub.name) == (None, "name", "givenName")


def test_find_core_attribute_qualified_with_the_core_urn() -> None:
    """RFC 7644 3.10: a core attribute may be URN-qualified with the core schema."""
    urn, attr, _ = find_attribute(USER_TYPE, AttrPath(USER_SCHEMA, "userName"))
    assert (urn, attr.name) == (None, "userName")


def test_find_common_attributes() -> None:
    """RFC 7643 3.1: id, externalId and meta are common to all resources."""
    assert find_attribute(GROUP_TYPE, AttrPath(None, "id"))[1].name == "id"
    assert find_attribute(GROUP_TYPE, AttrPath(None, "externalId"))[1].name == "externalId"
    urn, attr, sub = find_attribute(GROUP_TYPE, AttrPath(None, "meta", "lastModified"))
    assert (urn, attr.name, sub and sub.name) == (None, "meta", "lastModified")


@pytest.mark.parametrize(
    "path",
    [
        AttrPath(ENT, "manager", "value"),
        AttrPath(None, f"{ENT}:manager", "value"),
        AttrPath(ENT.lower(), "MANAGER", "VALUE"),
        AttrPath("urn:ietf:params:scim:schemas:extension:enterprise", "2.0:User:manager", "value"),
    ],
)
def test_find_extension_attribute_however_the_urn_was_split(path: AttrPath) -> None:
    """RFC 7644 3.10: extension attributes are URN-qualified; the "." in "2.0" must not confuse."""
    urn, attr, sub = find_attribute(USER_TYPE, path)
    assert (urn, attr.name, sub and sub.name) == (ENT, "manager", "value")


@pytest.mark.parametrize(
    "path",
    [
        AttrPath(None, "nickname2"),
        AttrPath(None, "name", "nick"),
        AttrPath(None, "userName", "x"),
        AttrPath("urn:example:other", "userName"),
        AttrPath(None, "employeeNumber"),
        AttrPath(None, ENT),
    ],
)
def test_unknown_path_raises_invalid_path(path: AttrPath) -> None:
    """RFC 7644 3.12 invalidPath: the path does not name a declared attribute."""
    with pytest.raises(InvalidPath):
        find_attribute(USER_TYPE, path)


# ------------------------------------------------------------------------------------ parse_attribute_list


def test_parse_attribute_list_empty() -> None:
    """RFC 7644 3.9: no parameter means no selection."""
    assert parse_attribute_list(None, USER_TYPE) == ()
    assert parse_attribute_list(" , ", USER_TYPE) == ()


def test_parse_attribute_list() -> None:
    """RFC 7644 3.9: a comma-separated list of attribute names, URN-qualified or not."""
    text = f"userName, name.givenName,,{ENT}:manager.value,{USER_SCHEMA}:emails,{ENT}"
    assert parse_attribute_list(text, USER_TYPE) == (
        AttrPath(None, "userName"),
        AttrPath(None, "name", "givenName"),
        AttrPath(ENT, "manager", "value"),
        AttrPath(USER_SCHEMA, "emails"),
        AttrPath("urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User"),
    )


# ------------------------------------------------------------------------------------ render


def attrs(text: str, rt: ResourceType = USER_TYPE) -> tuple[AttrPath, ...]:
    return parse_attribute_list(text, rt)


def test_render_default_never_returns_password() -> None:
    """RFC 7643 4.1.1, 7: password is returned "never"."""
    out = render(stored_user(password="secret", displayName="Babs"), USER_TYPE)
    assert "password" not in out and out["displayName"] == "Babs"


def test_render_key_order_and_schemas() -> None:
    """RFC 7643 3: schemas lists the core schema and each extension present; id and meta are kept."""
    out = render(stored_user(externalId="e1", **{ENT: {"department": "R&D"}}), USER_TYPE)
    assert list(out) == ["schemas", "id", "externalId", "userName", ENT, "meta"]
    assert out["schemas"] == [USER_SCHEMA, ENT]


def test_render_attributes_returns_only_named_and_always() -> None:
    """RFC 7644 3.9: "attributes" overrides the default set; id, schemas and meta are always returned."""
    out = render(
        stored_user(displayName="Babs", **{ENT: {"department": "R&D"}}), USER_TYPE, attributes=attrs("DisplayName")
    )
    assert out == {
        "schemas": [USER_SCHEMA],
        "id": "2819c223",
        "displayName": "Babs",
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }


def test_render_attributes_never_returns_password() -> None:
    """RFC 7643 7: "never" attributes are not returned even when requested."""
    out = render(stored_user(password="secret"), USER_TYPE, attributes=attrs("password"))
    assert "password" not in out


def test_render_attributes_with_sub_attribute() -> None:
    """RFC 7644 3.9: naming "name.givenName" returns only that sub-attribute."""
    out = render(
        stored_user(name={"givenName": "Barbara", "familyName": "Jensen"}),
        USER_TYPE,
        attributes=attrs("name.givenName"),
    )
    assert out["name"] == {"givenName": "Barbara"} and "userName" not in out


def test_render_attributes_with_sub_attribute_of_multi_valued() -> None:
    """RFC 7644 3.9: "emails.value" returns each email with only its value."""
    emails = [{"value": "a@example.com", "type": "work"}, {"type": "home"}]
    out = render(stored_user(emails=emails), USER_TYPE, attributes=attrs("emails.value"))
    assert out["emails"] == [{"value": "a@example.com"}]


def test_render_attributes_with_extension_attribute() -> None:
    """RFC 7644 3.9: extension attributes are named URN-qualified; schemas follows what is returned."""
    doc = stored_user(**{ENT: {"department": "R&D", "manager": "m1"}})
    out = render(doc, USER_TYPE, attributes=attrs(f"{ENT}:manager.value"))
    assert out[ENT] == {"manager": {"value": "m1"}}
    assert out["schemas"] == [USER_SCHEMA, ENT]
    assert render(doc, USER_TYPE, attributes=attrs("userName"))["schemas"] == [USER_SCHEMA]


def test_render_attributes_with_whole_extension() -> None:
    """RFC 7644 3.9: naming an extension URN returns its attributes."""
    doc = stored_user(**{ENT: {"department": "R&D"}})
    assert render(doc, USER_TYPE, attributes=attrs(ENT))[ENT] == {"department": "R&D"}


def test_render_unknown_attribute_names_are_ignored() -> None:
    """RFC 7644 3.9 / 3.4.2.5: unknown attribute names are ignored rather than an error."""
    doc = stored_user(displayName="Babs")
    assert render(doc, USER_TYPE, attributes=attrs("nope,name.nope")) == render(doc, USER_TYPE)


def test_render_excluded_attributes() -> None:
    """RFC 7644 3.9: "excludedAttributes" removes attributes from the default set."""
    out = render(
        stored_user(displayName="Babs", emails=[{"value": "a@example.com"}]), USER_TYPE, excluded=attrs("emails")
    )
    assert "emails" not in out and out["displayName"] == "Babs"


def test_render_excluded_sub_attribute() -> None:
    """RFC 7644 3.9: excluding "name.givenName" drops only that sub-attribute."""
    out = render(
        stored_user(name={"givenName": "Barbara", "familyName": "Jensen"}), USER_TYPE, excluded=attrs("name.givenName")
    )
    assert out["name"] == {"familyName": "Jensen"}


def test_render_excluded_cannot_remove_always_attributes() -> None:
    """RFC 7644 3.9: attributes returned "always" are returned even when excluded."""
    out = render(stored_user(), USER_TYPE, excluded=attrs("id,meta,schemas"))
    assert out["id"] == "2819c223" and "meta" in out and out["schemas"] == [USER_SCHEMA]


def test_render_excluded_whole_extension_drops_it_from_schemas() -> None:
    """RFC 7643 3: schemas lists only the extensions whose data is returned."""
    out = render(stored_user(**{ENT: {"department": "R&D"}}), USER_TYPE, excluded=attrs(ENT))
    assert ENT not in out and out["schemas"] == [USER_SCHEMA]


def test_render_request_attribute_only_when_named() -> None:
    """RFC 7643 7: "request" attributes are returned only when named in "attributes"."""
    doc = {**normalize(widget(secret="s"), WIDGET_TYPE), "id": "w1"}
    assert "secret" not in render(doc, WIDGET_TYPE)
    assert render(doc, WIDGET_TYPE, attributes=attrs("secret", WIDGET_TYPE))["secret"] == "s"


def test_render_request_and_always_sub_attributes() -> None:
    """RFC 7643 7: "returned" applies to sub-attributes: "always" ones come with any named sibling,
    "request" ones only when named (or their parent is)."""
    part = {"code": "c", "note": "n", "ref": "r", "extra": "x"}
    doc = {**normalize(widget(part=part), WIDGET_TYPE), "id": "w1"}
    assert render(doc, WIDGET_TYPE)["part"] == {"code": "c", "note": "n", "ref": "r"}
    assert render(doc, WIDGET_TYPE, attributes=attrs("part.note", WIDGET_TYPE))["part"] == {"note": "n", "ref": "r"}
    assert render(doc, WIDGET_TYPE, attributes=attrs("part", WIDGET_TYPE))["part"] == part
    assert render(doc, WIDGET_TYPE, attributes=attrs("part.extra", WIDGET_TYPE))["part"] == {"ref": "r", "extra": "x"}


def test_render_does_not_modify_the_doc() -> None:
    """render builds a new representation; the stored doc is left as it was."""
    doc = stored_user(password="secret", name={"givenName": "Barbara", "familyName": "Jensen"})
    before = repr(doc)
    render(doc, USER_TYPE, attributes=attrs("name.givenName"))
    render(doc, USER_TYPE, excluded=attrs("name.familyName"))
    assert repr(doc) == before


# ------------------------------------------------------------------------ normalize: logged rewrites


def test_string_boolean_rewrite_is_logged_naming_the_attribute(debug_log: pytest.LogCaptureFixture) -> None:
    """An admin can see that the client sent "False" for active, and what it was read as."""
    normalize(user(active="False"), USER_TYPE)
    assert rewrites(debug_log) == ["rewrite string-boolean: 'active' given the string 'False', read as false"]


def test_real_booleans_log_nothing(debug_log: pytest.LogCaptureFixture) -> None:
    normalize(user(active=False, emails=[{"value": "a@example.com", "primary": True}]), USER_TYPE)
    assert rewrites(debug_log) == []


def test_bare_manager_rewrite_is_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra's {"manager": "<id>"} is read as {"value": "<id>"}, and says so."""
    normalize(user(**{ENT: {"manager": "26118915"}}), USER_TYPE)
    [message] = rewrites(debug_log)
    assert message.startswith(f"rewrite bare-value: '{ENT}:manager' given the plain value '26118915'")


def test_extra_schema_urn_drop_is_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """Entra's ADSCIM Group URN in schemas is dropped, naming the URN."""
    normalize({"schemas": [GROUP_SCHEMA, ENTRA_GROUP], "displayName": "Admins"}, GROUP_TYPE)
    assert rewrites(debug_log) == [
        f"rewrite extra-schema-dropped: {ENTRA_GROUP!r} in 'schemas' is not a schema of Group; dropped"
    ]


def test_declared_extension_urn_in_schemas_is_not_logged_as_dropped(debug_log: pytest.LogCaptureFixture) -> None:
    normalize({"schemas": [USER_SCHEMA, ENT], "userName": "bjensen", ENT: {"department": "R&D"}}, USER_TYPE)
    assert rewrites(debug_log) == []


def test_read_only_input_ignored_is_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """Okta's PUT carries id, groups and meta; Entra's POST carries meta.resourceType; Okta's members carry
    display. Each ignored value is named."""
    normalize(user(id="x", groups=[], meta={"resourceType": "User"}), USER_TYPE)
    normalize(
        {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": "u1", "display": "Babs"}]}, GROUP_TYPE
    )
    logged = rewrites(debug_log)
    assert [m.split(":")[0] for m in logged] == ["rewrite read-only-ignored"] * 4
    assert [m.split("'")[1] for m in logged] == ["id", "groups", "meta", "members.display"]
