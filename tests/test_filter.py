"""Filter, attribute-path and PATCH-path parsing (RFC 7644 3.4.2.2 and 3.5.2)."""

from __future__ import annotations

import pytest

from scimward.scim.ast import And, AttrPath, Compare, CompValue, Not, Or, PatchPath, Present, ValuePath
from scimward.scim.errors import InvalidFilter, InvalidPath
from scimward.scim.filter import parse_attr_path, parse_filter, parse_patch_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def p(attr: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    return AttrPath(schema, attr, sub)


def eq(attr: str, value: CompValue, sub: str | None = None) -> Compare:
    return Compare(p(attr, sub), "eq", value)


WORK_EXAMPLE = And(eq("type", "work"), Compare(p("value"), "co", "@example.com"))

RFC_EXAMPLES = [
    ('userName eq "bjensen"', eq("userName", "bjensen")),
    ('name.familyName co "O\'Malley"', Compare(p("name", "familyName"), "co", "O'Malley")),
    ('userName sw "J"', Compare(p("userName"), "sw", "J")),
    (f'{CORE_USER}:userName sw "J"', Compare(p("userName", schema=CORE_USER), "sw", "J")),
    ("title pr", Present(p("title"))),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "ge", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "lt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "le", "2011-05-13T04:42:34Z"),
    ),
    ('title pr and userType eq "Employee"', And(Present(p("title")), eq("userType", "Employee"))),
    ('title pr or userType eq "Intern"', Or(Present(p("title")), eq("userType", "Intern"))),
    (f'schemas eq "{ENTERPRISE}"', eq("schemas", ENTERPRISE)),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        And(
            eq("userType", "Employee"),
            Or(Compare(p("emails"), "co", "example.com"), Compare(p("emails", "value"), "co", "example.org")),
        ),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        And(
            Compare(p("userType"), "ne", "Employee"),
            Not(
                Or(
                    Compare(p("emails"), "co", "example.com"),
                    Compare(p("emails", "value"), "co", "example.org"),
                )
            ),
        ),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        And(eq("userType", "Employee"), eq("emails", "work", sub="type")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        And(eq("userType", "Employee"), ValuePath(p("emails"), WORK_EXAMPLE)),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]',
        Or(
            ValuePath(p("emails"), WORK_EXAMPLE),
            ValuePath(p("ims"), And(eq("type", "xmpp"), Compare(p("value"), "co", "@foo.com"))),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES, ids=[text for text, _ in RFC_EXAMPLES])
def test_rfc_examples(text: str, expected: object) -> None:
    """RFC 7644 3.4.2.2: every example filter after Table 3 parses to the intended tree."""
    assert parse_filter(text) == expected


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_every_compare_operator(op: str) -> None:
    """RFC 7644 3.4.2.2 Table 3: each comparison operator is recognised."""
    assert parse_filter(f'userName {op} "x"') == Compare(p("userName"), op, "x")


@pytest.mark.parametrize("spelling", ["Eq", "EQ", "eQ"])
def test_operator_case_insensitive(spelling: str) -> None:
    """RFC 7644 3.4.2.2: attribute operators are case-insensitive; the AST holds lower case."""
    assert parse_filter(f'userName {spelling} "john"') == eq("userName", "john")


def test_attribute_name_spelling_is_kept() -> None:
    """RFC 7644 3.4.2.2: ``Username eq "john"`` is valid; the name keeps the client's spelling."""
    assert parse_filter('Username eq "john"') == eq("Username", "john")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title PR", Present(p("title"))),
        ("a pr AND b pr", And(Present(p("a")), Present(p("b")))),
        ("a pr Or b pr", Or(Present(p("a")), Present(p("b")))),
        ("NOT (a pr)", Not(Present(p("a")))),
    ],
)
def test_keywords_case_insensitive(text: str, expected: object) -> None:
    """RFC 7644 3.4.2.2: pr, and, or, not are case-insensitive."""
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('a eq "x"', "x"),
        ('a eq "say \\"hi\\""', 'say "hi"'),
        ('a eq "caf\\u00e9"', "café"),
        ('a eq "back\\\\slash"', "back\\slash"),
        ('a eq ""', ""),
        ("a eq 42", 42),
        ("a eq -7", -7),
        ("a eq 1.5", 1.5),
        ("a eq 1e3", 1000.0),
        ("a eq true", True),
        ("a eq FALSE", False),
        ("a eq Null", None),
    ],
)
def test_comparison_values(text: str, value: CompValue) -> None:
    """RFC 7644 3.4.2.2: compValue is a JSON string, number, true, false or null."""
    assert parse_filter(text) == eq("a", value)


def test_integer_stays_int() -> None:
    """RFC 7644 3.4.2.2: a number without fraction or exponent is an integer."""
    parsed = parse_filter("a eq 42")
    assert isinstance(parsed, Compare)
    assert type(parsed.value) is int


def test_and_binds_tighter_than_or() -> None:
    """RFC 7644 3.4.2.2: and binds tighter than or."""
    assert parse_filter("a pr or b pr and c pr") == Or(Present(p("a")), And(Present(p("b")), Present(p("c"))))


def test_not_binds_tighter_than_and() -> None:
    """RFC 7644 3.4.2.2: not takes precedence over and."""
    assert parse_filter("not (a pr) and b pr") == And(Not(Present(p("a"))), Present(p("b")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a pr and b pr and c pr", And(And(Present(p("a")), Present(p("b"))), Present(p("c")))),
        ("a pr or b pr or c pr", Or(Or(Present(p("a")), Present(p("b"))), Present(p("c")))),
    ],
)
def test_left_associative(text: str, expected: object) -> None:
    """RFC 7644 3.4.2.2: chains of the same logical operator group to the left."""
    assert parse_filter(text) == expected


def test_parentheses_override_precedence() -> None:
    """RFC 7644 3.4.2.2: grouping operators are evaluated first."""
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(Present(p("a")), Present(p("b"))), Present(p("c")))


def test_redundant_parentheses() -> None:
    """RFC 7644 3.4.2.2: groups may nest."""
    assert parse_filter("((a pr))") == Present(p("a"))


def test_not_without_space() -> None:
    """RFC 7644 3.4.2.2 Figure 1: ``"not" [SP] "("`` -- the space is optional."""
    assert parse_filter("not(a pr)") == Not(Present(p("a")))


def test_attribute_named_not() -> None:
    """RFC 7644 3.4.2.2: ATTRNAME allows "not", told apart from the keyword by the operator after it."""
    assert parse_filter("not pr") == Present(p("not"))


def test_not_inside_value_filter() -> None:
    """RFC 7644 3.4.2.2 Figure 1: valFilter may be ``not (valFilter)``."""
    assert parse_filter('emails[not (type eq "work")]') == ValuePath(p("emails"), Not(eq("type", "work")))


def test_grouping_inside_value_filter() -> None:
    """RFC 7644 3.4.2.2: parentheses may group inside a value filter."""
    expected = ValuePath(p("emails"), And(Or(eq("type", "work"), eq("type", "home")), Present(p("value"))))
    assert parse_filter('emails[(type eq "work" or type eq "home") and value pr]') == expected


def test_value_path_combined_with_and() -> None:
    """RFC 7644 3.4.2.2: a value path is a FILTER and combines with logical operators."""
    expected = And(ValuePath(p("emails"), eq("type", "work")), Compare(p("userName"), "sw", "a"))
    assert parse_filter('emails[type eq "work"] and userName sw "a"') == expected


def test_value_path_with_schema() -> None:
    """RFC 7644 3.4.2.2: the attribute before '[' may be URN-qualified."""
    expected = ValuePath(p("emails", schema=CORE_USER), eq("type", "work"))
    assert parse_filter(f'{CORE_USER}:emails[type eq "work"]') == expected


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (f"{ENTERPRISE}:employeeNumber pr", p("employeeNumber", schema=ENTERPRISE)),
        (f"{ENTERPRISE}:manager.value pr", p("manager", "value", schema=ENTERPRISE)),
        (f"{CORE_USER}:name.givenName pr", p("name", "givenName", schema=CORE_USER)),
        ("members.$ref pr", p("members", "$ref")),
        ("x-custom_1 pr", p("x-custom_1")),
    ],
)
def test_attribute_paths(text: str, path: AttrPath) -> None:
    """RFC 7644 3.4.2.2 Figure 1: attrPath = [URI ":"] ATTRNAME *1subAttr."""
    assert parse_filter(text) == Present(path)


@pytest.mark.parametrize("text", ["a pr\tand\tb pr", "  a pr  and   b pr  ", "( a pr )  and (b pr)"])
def test_whitespace(text: str) -> None:
    """RFC 7644 3.4.2.2: runs of spaces and tabs separate tokens."""
    assert parse_filter(text) == And(Present(p("a")), Present(p("b")))


def test_brackets_inside_string_are_literal() -> None:
    """RFC 7644 3.4.2.2: brackets and parentheses inside a JSON string are data."""
    assert parse_filter('a eq "(x]"') == eq("a", "(x]")


def test_parse_is_cached() -> None:
    """Parsed filters are immutable, so repeated parses share one tree."""
    assert parse_filter("cached pr") is parse_filter("cached pr")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("(a pr", "unbalanced '('"),
        ("a pr)", "unbalanced ')'"),
        ("((a pr)", "unbalanced '('"),
        ('a[b eq "x"', "unbalanced '['"),
        ("a pr]", "unbalanced ']'"),
        ('userName eqq "x"', "unknown operator 'eqq'"),
        ('userName == "x"', "unexpected character '='"),
        ("userName eq", "missing value"),
        ("userName eq )", "missing value"),
        ("userName", "expected an operator"),
        ("userName eq bjensen", "double-quoted"),
        ("a pr b pr", "expected 'and' or 'or'"),
        ("a pr and", "end of input"),
        ('a eq "x" "y"', "expected 'and' or 'or'"),
        ("a[b[c eq 1]]", "nested"),
        ('a eq "\\x"', "invalid string"),
        ('a eq "\\u12"', "invalid string"),
        ('a eq "abc', "unterminated string"),
        ('emails[type eq "work"].value', "an operator"),
        ("not a pr", "expected '(' after 'not'"),
        ('"a" eq "b"', "expected an attribute path"),
        ("a.b.c pr", "invalid attribute path"),
        ("foo:bar pr", "invalid attribute path"),
        ('name.givenName[value eq "x"]', "not sub-attribute"),
        ('emails[value.x eq "a"]', "plain sub-attribute"),
        (f'emails[{CORE_USER}:type eq "a"]', "plain sub-attribute"),
        ('a eq"x"', "expected whitespace"),
        ("a eq 1and b pr", "expected whitespace"),
        ("a eq 1e999", "out of range"),
        ("a[]", "expected an attribute path"),
        ("()", "expected an attribute path"),
    ],
)
def test_invalid_filters(text: str, needle: str) -> None:
    """RFC 7644 3.4.2.2: a filter that does not match the grammar is rejected with invalidFilter."""
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert needle in info.value.detail


def test_error_names_position() -> None:
    """RFC 7644 3.12: the detail should let the client find the mistake."""
    with pytest.raises(InvalidFilter, match="position 9"):
        parse_filter('userName eqq "x"')


def test_invalid_filter_scim_type() -> None:
    """RFC 7644 3.12: an unparseable filter is a 400 with scimType invalidFilter."""
    with pytest.raises(InvalidFilter) as info:
        parse_filter("(")
    assert info.value.to_error()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", p("userName")),
        ("name.givenName", p("name", "givenName")),
        (" emails ", p("emails")),
        (f"{ENTERPRISE}:manager", p("manager", schema=ENTERPRISE)),
        (f"{ENTERPRISE}:manager.displayName", p("manager", "displayName", schema=ENTERPRISE)),
        (
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName",
            p("userName", schema="URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
        ),
    ],
)
def test_parse_attr_path(text: str, expected: AttrPath) -> None:
    """RFC 7644 3.4.2.5 / 3.9: attributes and sortBy take attrPath values."""
    assert parse_attr_path(text) == expected


@pytest.mark.parametrize("text", ["", "1abc", "a.b.c", "a b", 'emails[type eq "work"]', "foo:bar", "name."])
def test_parse_attr_path_invalid(text: str) -> None:
    """RFC 7644 3.12: a malformed attribute path is rejected with invalidPath."""
    with pytest.raises(InvalidPath):
        parse_attr_path(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("members", PatchPath(p("members"))),
        ("name.givenName", PatchPath(p("name", "givenName"))),
        ('members[value eq "2819c223"]', PatchPath(p("members"), eq("value", "2819c223"))),
        ('emails[type eq "work"].value', PatchPath(p("emails"), eq("type", "work"), "value")),
        (
            'emails[type eq "work" and primary eq true].display',
            PatchPath(p("emails"), And(eq("type", "work"), eq("primary", True)), "display"),
        ),
        (f"{ENTERPRISE}:manager", PatchPath(p("manager", schema=ENTERPRISE))),
        (f"{ENTERPRISE}:manager.value", PatchPath(p("manager", "value", schema=ENTERPRISE))),
        (f"{CORE_USER}:name.givenName", PatchPath(p("name", "givenName", schema=CORE_USER))),
        (
            f'{CORE_USER}:emails[type eq "work"].value',
            PatchPath(p("emails", schema=CORE_USER), eq("type", "work"), "value"),
        ),
        ('members[value eq "a]b"]', PatchPath(p("members"), eq("value", "a]b"))),
    ],
)
def test_parse_patch_path(text: str, expected: PatchPath) -> None:
    """RFC 7644 3.5.2: PATH = attrPath / valuePath [subAttr]."""
    assert parse_patch_path(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "attribute path"),
        ("a b", "unexpected 'b'"),
        ("a.b.c", "invalid attribute path"),
        ('emails[type eq "work"', "unbalanced '['"),
        ('emails[type eq "work"].', "'.subAttribute'"),
        ('emails[type eq "work"]. value', "'.subAttribute'"),
        ('emails[type eq "work"] .value', "'.subAttribute'"),
        ('emails[type eq "work"].value.x', "'.subAttribute'"),
        ('emails[type eq "work"]x', "'.subAttribute'"),
        ('emails[type eq "work"][value pr]', "'.subAttribute'"),
        ('name.givenName[value eq "x"]', "not sub-attribute"),
        ("emails[a[b pr]]", "nested"),
    ],
)
def test_parse_patch_path_invalid(text: str, needle: str) -> None:
    """RFC 7644 3.5.2: a malformed PATCH path is rejected with invalidPath."""
    with pytest.raises(InvalidPath) as info:
        parse_patch_path(text)
    assert needle in info.value.detail


def test_bad_filter_in_patch_path_is_invalid_path() -> None:
    """RFC 7644 3.5.2: a bad filter inside a PATCH path surfaces as invalidPath, not invalidFilter."""
    with pytest.raises(InvalidPath, match="unknown operator"):
        parse_patch_path('emails[type eqq "work"]')


def test_deep_nesting_rejected() -> None:
    """RFC 7644 3.12: a pathologically nested filter is a 400 invalidFilter, not a server error."""
    with pytest.raises(InvalidFilter, match="nested deeper"):
        parse_filter("(" * 1000 + "a pr" + ")" * 1000)


def test_reasonable_nesting_accepted() -> None:
    """RFC 7644 3.4.2.2: grouping may nest to any sensible depth."""
    expr = parse_filter("not (" * 20 + "a pr" + ")" * 20)
    for _ in range(20):
        assert isinstance(expr, Not)
        expr = expr.expr
    assert isinstance(expr, Present) and expr.path.attr == "a"


def test_entra_value_path_with_sub_attribute_means_one_element() -> None:
    """Entra sends emails[type eq "work"].value eq "x" (not in RFC 7644's ABNF): one work e-mail is "x"."""
    parsed = parse_filter('emails[type eq "work"].value eq "x"')
    assert parsed == ValuePath(
        AttrPath(None, "emails"),
        And(Compare(AttrPath(None, "type"), "eq", "work"), Compare(AttrPath(None, "value"), "eq", "x")),
    )
