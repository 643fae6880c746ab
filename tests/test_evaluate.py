"""Evaluating value filters against one element of a multi-valued attribute (RFC 7644 3.4.2.2)."""

from __future__ import annotations

from typing import Any

import pytest

from scimward.scim.ast import AttrPath, Compare, Present, ValuePath
from scimward.scim.errors import InvalidFilter
from scimward.scim.evaluate import matches
from scimward.scim.filter import parse_filter
from scimward.scim.schema import Attribute, AttrType

EMAILS = Attribute(
    "emails",
    AttrType.COMPLEX,
    multi_valued=True,
    sub_attributes=(
        Attribute("value"),
        Attribute("display"),
        Attribute("type"),
        Attribute("primary", AttrType.BOOLEAN),
        Attribute("ref", AttrType.REFERENCE, case_exact=True),
        Attribute("since", AttrType.DATETIME),
        Attribute("rank", AttrType.INTEGER),
        Attribute("weight", AttrType.DECIMAL),
        Attribute("blob", AttrType.BINARY, case_exact=True),
    ),
)
ROLES = Attribute("roles", AttrType.STRING, multi_valued=True)
TAGS = Attribute("tags", AttrType.STRING, multi_valued=True, case_exact=True)

WORK = {
    "value": "Babs@Example.com",
    "type": "work",
    "primary": True,
    "ref": "https://Example.com/U1",
    "since": "2011-05-13T04:42:34Z",
    "rank": 3,
    "weight": 2.5,
}


def check(text: str, element: Any = None, attribute: Attribute = EMAILS) -> bool:
    """Evaluate ``text`` as the inside of ``attribute[...]``."""
    expr = parse_filter(f"{attribute.name}[{text}]")
    assert isinstance(expr, ValuePath)
    return matches(expr.filter, WORK if element is None else element, attribute)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('type eq "work"', True),
        ('type eq "home"', False),
        ('type ne "home"', True),
        ('type ne "work"', False),
        ('value co "@example"', True),
        ('value co "@nowhere"', False),
        ('value sw "babs"', True),
        ('value sw "example"', False),
        ('value ew ".COM"', True),
        ('value ew ".org"', False),
        ('type gt "home"', True),
        ('type ge "work"', True),
        ('type lt "home"', False),
        ('type le "work"', True),
    ],
)
def test_string_operators(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2 Table 3: each operator on a caseExact=false string."""
    assert check(text) is expected


@pytest.mark.parametrize("text", ['type eq "WORK"', 'value eq "babs@example.com"', 'value co "EXAMPLE"'])
def test_strings_case_insensitive_by_default(text: str) -> None:
    """RFC 7644 3.4.2.2: string comparisons respect caseExact; false means case-insensitive."""
    assert check(text)


@pytest.mark.parametrize(
    ("text", "expected"), [('ref eq "https://example.com/u1"', False), ('ref sw "https://Ex"', True)]
)
def test_case_exact_strings(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2: a caseExact sub-attribute compares case-sensitively."""
    assert check(text) is expected


@pytest.mark.parametrize("text", ['TYPE eq "work"', 'Type eq "work"', "PRIMARY eq true"])
def test_filter_attribute_names_case_insensitive(text: str) -> None:
    """RFC 7644 3.4.2.2: attribute names in filters are case-insensitive."""
    assert check(text)


def test_element_keys_case_insensitive() -> None:
    """RFC 7643 2.1: attribute names in the resource are case-insensitive too."""
    assert check('type eq "work"', {"TYPE": "work"})


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ({"display": "x"}, True),
        ({}, False),
        ({"display": None}, False),
        ({"display": ""}, False),
        ({"display": []}, False),
        ({"display": {}}, False),
    ],
)
def test_present(element: dict[str, Any], expected: bool) -> None:
    """RFC 7644 3.4.2.2: pr matches a non-empty, non-null value only."""
    assert check("display pr", element) is expected


@pytest.mark.parametrize("op", ["eq", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_missing_attribute_fails_comparison(op: str) -> None:
    """RFC 7644 3.4.2.2: a comparison against an unassigned attribute does not match."""
    assert not check(f'display {op} "x"', {"type": "work"})


def test_missing_attribute_ne_matches() -> None:
    """RFC 7644 3.4.2.2: an unassigned attribute is not equal to any value."""
    assert check('display ne "x"', {"type": "work"})


def test_null_value_counts_as_missing() -> None:
    """RFC 7643 2.5: null and unassigned are the same state."""
    assert not check('display eq "x"', {"display": None})


@pytest.mark.parametrize(
    ("text", "element", "expected"),
    [
        ("display eq null", {}, True),
        ("display eq null", {"display": "x"}, False),
        ("display ne null", {"display": "x"}, True),
        ("display ne null", {}, False),
    ],
)
def test_null_comparison(text: str, element: dict[str, Any], expected: bool) -> None:
    """RFC 7643 2.5: ``eq null`` asks whether the attribute is unassigned."""
    assert check(text, element) is expected


@pytest.mark.parametrize("text", ['nosuch eq "x"', "nosuch pr", 'nosuch co "x"'])
def test_unknown_sub_attribute_is_missing(text: str) -> None:
    """RFC 7644 3.4.2.2: an undeclared sub-attribute behaves as unassigned, even if present in data."""
    assert not check(text, {"nosuch": "x"})


def test_unknown_sub_attribute_ne_matches() -> None:
    """RFC 7644 3.4.2.2: an undeclared sub-attribute is unassigned, so ne matches."""
    assert check('nosuch ne "x"')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("primary eq true", True),
        ("primary eq false", False),
        ("primary ne false", True),
        ('primary eq "true"', False),
    ],
)
def test_boolean_equality(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2: booleans compare by eq/ne against true/false literals."""
    assert check(text) is expected


@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le"])
def test_ordering_on_boolean_attribute_rejected(op: str) -> None:
    """RFC 7644 3.4.2.2: gt/ge/lt/le on a boolean attribute is invalidFilter."""
    with pytest.raises(InvalidFilter):
        check(f"primary {op} true")


@pytest.mark.parametrize("text", ["type gt true", 'blob lt "AAAA"', "type ge null"])
def test_ordering_on_boolean_binary_or_null_rejected(text: str) -> None:
    """RFC 7644 3.4.2.2: ordering a boolean or binary value is invalidFilter, null has no order."""
    with pytest.raises(InvalidFilter):
        check(text)


def test_ordering_rejected_even_when_missing() -> None:
    """RFC 7644 3.4.2.2: an invalid filter is invalid regardless of the data."""
    with pytest.raises(InvalidFilter):
        check("primary gt false", {})


@pytest.mark.parametrize("text", ["primary co true", "rank sw 3", 'since co "2011"', "type ew 5"])
def test_substring_operators_need_strings(text: str) -> None:
    """RFC 7644 3.4.2.2: co/sw/ew are substring tests, meaningless for non-string operands."""
    with pytest.raises(InvalidFilter):
        check(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('since gt "2011-05-13T04:42:33Z"', True),
        ('since gt "2011-05-13T04:42:34Z"', False),
        ('since ge "2011-05-13T04:42:34Z"', True),
        ('since lt "2012-01-01T00:00:00Z"', True),
        ('since le "2011-05-13T04:42:34.000Z"', True),
        ('since eq "2011-05-13T06:42:34+02:00"', True),
        ('since eq "2011-05-13T04:42:34"', True),
    ],
)
def test_datetime_compares_chronologically(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2 Table 3: dateTime ordering is chronological, not lexicographic."""
    assert check(text) is expected


def test_bad_datetime_literal_rejected_for_ordering() -> None:
    """RFC 7644 3.4.2.2: a dateTime ordering needs a dateTime value."""
    with pytest.raises(InvalidFilter):
        check('since gt "yesterday"')


def test_bad_datetime_literal_never_equal() -> None:
    """RFC 7644 3.4.2.2: a non-dateTime string is simply not equal to a dateTime."""
    assert not check('since eq "yesterday"')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rank eq 3", True),
        ("rank eq 3.0", True),
        ("rank gt 2", True),
        ("rank lt 3", False),
        ("rank le 3", True),
        ("weight ge 2.5", True),
        ("weight gt 10", False),
        ('rank eq "3"', False),
        ("rank eq true", False),
    ],
)
def test_numbers_compare_numerically(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2: integer and decimal attributes compare as numbers."""
    assert check(text) is expected


def test_number_ordering_needs_number() -> None:
    """RFC 7644 3.4.2.2: ordering a number against a string is invalidFilter."""
    with pytest.raises(InvalidFilter):
        check('rank gt "2"')


def test_string_ordering_is_lexicographic() -> None:
    """RFC 7644 3.4.2.2 Table 3: string ordering is lexicographic."""
    assert check('value gt "a"', {"value": "b"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('type eq "work" and value co "@example.com"', True),
        ('type eq "home" and value co "@example.com"', False),
        ('type eq "home" or value co "@example.com"', True),
        ('type eq "home" or value co "@nowhere"', False),
        ('not (type eq "home")', True),
        ('not (type eq "work")', False),
        ('type eq "home" or (type eq "work" and primary eq true)', True),
    ],
)
def test_logical_operators(text: str, expected: bool) -> None:
    """RFC 7644 3.4.2.2 Table 4: and, or, not and grouping."""
    assert check(text) is expected


def test_nested_value_path_rejected() -> None:
    """RFC 7644 3.4.2.2: value filters cannot nest."""
    nested = ValuePath(AttrPath(None, "type"), Present(AttrPath(None, "value")))
    with pytest.raises(InvalidFilter):
        matches(nested, WORK, EMAILS)


def test_qualified_path_rejected() -> None:
    """RFC 7644 3.4.2.2: inside brackets paths name sub-attributes of the bracketed attribute."""
    with pytest.raises(InvalidFilter):
        matches(Compare(AttrPath(None, "emails", "type"), "eq", "work"), WORK, EMAILS)


@pytest.mark.parametrize(
    ("text", "element", "expected"),
    [
        ('value eq "admin"', "Admin", True),
        ('value eq "admin"', "user", False),
        ('VALUE sw "ad"', "admin", True),
        ("value pr", "admin", True),
        ("value pr", "", False),
        ('display eq "admin"', "admin", False),
    ],
)
def test_simple_multi_valued_element(text: str, element: str, expected: bool) -> None:
    """RFC 7644 3.5.2: for a multi-valued simple attribute, ``value`` is the element itself."""
    assert check(text, element, ROLES) is expected


def test_simple_multi_valued_case_exact() -> None:
    """RFC 7644 3.4.2.2: caseExact applies to simple multi-valued attributes too."""
    assert not check('value eq "admin"', "Admin", TAGS)


def test_non_dict_element_of_complex_attribute_is_missing() -> None:
    """RFC 7644 3.4.2.2: a malformed element has no sub-attributes to match."""
    assert not check('type eq "work"', "work")


def test_number_ordering_needs_number_even_when_missing() -> None:
    """RFC 7644 3.4.2.2: a type-mismatched ordering is invalid regardless of the data."""
    with pytest.raises(InvalidFilter):
        check('rank gt "2"', {})
