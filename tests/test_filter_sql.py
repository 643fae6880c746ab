"""The SCIM filter compiler (RFC 7644 3.4.2.2 filters, 3.4.2.3 sortBy) on both SQL dialects, no server.

Assertions are on the SQL text, compiled with the dialect's own compiler and literal values, so
they show what the database is asked: promoted columns, EXISTS over child tables, JSON extraction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Dialect

from scimward.scim.errors import InvalidFilter, InvalidValue
from scimward.scim.filter import parse_attr_path, parse_filter
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.scim.schema import Attribute, AttrType, ResourceType, Schema
from scimward.store.filter_sql import FilterCompiler, has_substring_match, member_condition, sort_expression
from scimward.store.tables import identities, memberships

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    # "named" so that literal '%' in LIKE patterns is not doubled as pyformat would.
    "postgresql": psycopg.dialect(paramstyle="named"),  # type: ignore[no-untyped-call]
}
BOTH = pytest.mark.parametrize("dialect", list(DIALECTS))

#: A resource type with the attribute types the standard schemas lack.
DEVICE_TYPE = ResourceType(
    "Device",
    "/Devices",
    "Device",
    Schema(
        "urn:example:scim:Device",
        "Device",
        "Device",
        (
            Attribute("level", AttrType.INTEGER),
            Attribute("weight", AttrType.DECIMAL),
            Attribute("seen", AttrType.DATETIME),
            Attribute("blob", AttrType.BINARY, case_exact=True),
            Attribute("tags", AttrType.STRING, multi_valued=True, case_exact=True),
        ),
    ),
)


def where(filter_text: str, dialect: str, rt: ResourceType = USER_TYPE) -> sa.Select[Any]:
    condition = FilterCompiler(rt, dialect).compile(parse_filter(filter_text))
    return sa.select(identities.c.id).where(condition)


def sql(filter_text: str, dialect: str, rt: ResourceType = USER_TYPE) -> str:
    """The compiled query ``SELECT id FROM identities WHERE <filter>`` with literal values, on one line."""
    statement = where(filter_text, dialect, rt)
    text = str(statement.compile(dialect=DIALECTS[dialect], compile_kwargs={"literal_binds": True}))
    return " ".join(text.split())


def params(filter_text: str, dialect: str, rt: ResourceType = USER_TYPE) -> dict[str, Any]:
    compiled: dict[str, Any] = where(filter_text, dialect, rt).compile(dialect=DIALECTS[dialect]).params
    return compiled


# -- promoted columns ---------------------------------------------------------------------------------------


@BOTH
def test_user_name_eq_uses_the_lower_cased_column_so_the_index_applies(dialect: str) -> None:
    """userName is caseExact=false (RFC 7643 4.1.1): compared lower-cased, on the indexed column."""
    text = sql('userName eq "BJensen@Example.COM"', dialect)
    assert "identities.user_name_lower = 'bjensen@example.com'" in text
    assert "lower(" not in text
    assert "doc" not in text


@BOTH
def test_display_name_uses_its_lower_cased_column(dialect: str) -> None:
    text = sql('displayName sw "Ad"', dialect, GROUP_TYPE)
    assert "identities.display_name_lower LIKE 'ad%' ESCAPE '\\'" in text
    assert "lower(" not in text


@BOTH
def test_case_exact_columns_compare_as_given(dialect: str) -> None:
    """id and externalId are caseExact (RFC 7643 3.1)."""
    assert "identities.external_id = 'AbC'" in sql('externalId eq "AbC"', dialect)
    assert "identities.id = 'AbC'" in sql('id eq "AbC"', dialect)
    assert "lower(" not in sql('externalId eq "AbC" or id eq "AbC"', dialect)


@BOTH
def test_active_and_meta_columns(dialect: str) -> None:
    assert "identities.active IS NOT NULL AND identities.active = " in sql("active eq true", dialect)
    assert "identities.resource_type = 'User'" in sql('meta.resourceType eq "User"', dialect)


@BOTH
def test_meta_dates_compare_at_the_millisecond_precision_they_are_rendered_with(dialect: str) -> None:
    """meta.created renders as ``...05.123Z`` while the column holds microseconds: ``gt`` that text
    must not match the resource itself, and ``eq`` it must."""
    assert params('meta.created gt "2020-01-02T03:04:05.123Z"', dialect)["created_1"] == datetime(
        2020, 1, 2, 3, 4, 5, 124000
    )
    assert ">=" in sql('meta.created gt "2020-01-02T03:04:05.123Z"', dialect)
    equal = params('meta.created eq "2020-01-02T03:04:05.123Z"', dialect)
    assert sorted(equal.values()) == [datetime(2020, 1, 2, 3, 4, 5, 123000), datetime(2020, 1, 2, 3, 4, 5, 124000)]
    # An offset is converted to the UTC the columns hold.
    assert params('meta.lastModified lt "2020-01-02T05:04:05+02:00"', dialect)["last_modified_1"] == datetime(
        2020, 1, 2, 3, 4, 5
    )
    # No millisecond rendering equals a sub-millisecond instant.
    assert sql('meta.created eq "2020-01-02T03:04:05.1234Z"', dialect).endswith(("WHERE 0 = 1", "WHERE false"))


# -- child tables -----------------------------------------------------------------------------------------


@BOTH
def test_emails_are_an_exists_over_identity_emails(dialect: str) -> None:
    text = sql('emails.value co "@Corp"', dialect)
    assert (
        "EXISTS (SELECT 1 AS anon_1 FROM identity_emails AS email WHERE email.identity_id = identities.id "
        "AND email.value_lower IS NOT NULL AND email.value_lower LIKE '%@corp%' ESCAPE '\\')"
    ) in text
    assert "doc" not in text


@BOTH
def test_a_value_filter_holds_within_one_email(dialect: str) -> None:
    """RFC 7644 3.4.2.2 ``emails[type eq "work" and value co "@corp"]``: one EXISTS, both conditions."""
    one = sql('emails[type eq "work" and value co "@corp"]', dialect)
    assert one.count("EXISTS") == 1
    assert "lower(email.type) = 'work'" in one
    assert "email.value_lower LIKE '%@corp%'" in one
    # Two value filters may each be satisfied by a different email.
    assert sql('emails[type eq "work"] and emails[value co "@corp"]', dialect).count("EXISTS") == 2


@BOTH
def test_members_and_groups_are_exists_over_memberships(dialect: str) -> None:
    members = sql('members.value eq "u-1"', dialect, GROUP_TYPE)
    assert (
        "EXISTS (SELECT 1 AS anon_1 FROM memberships AS member WHERE member.group_id = identities.id "
        "AND member.member_id IS NOT NULL AND member.member_id = 'u-1')"
    ) in members
    groups = sql('groups[value eq "g-1"]', dialect)
    assert "FROM memberships AS membership" in groups
    assert "membership.member_id = identities.id" in groups
    assert "membership.group_id = 'g-1'" in groups


def test_member_condition_for_patch_removes() -> None:
    condition = member_condition(parse_filter('value eq "u-1" or type eq "Group"'), memberships)
    text = str(condition.compile(dialect=DIALECTS["sqlite"], compile_kwargs={"literal_binds": True}))
    assert "memberships.member_id = 'u-1'" in text
    assert "lower(memberships.member_type) = 'group'" in text


# -- JSON ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("sqlite", "lower(CAST(json_extract(identities.doc, '$.\"title\"') AS TEXT)) = 'boss'"),
        ("postgresql", "lower(CAST(identities.doc #>> ARRAY['title'] AS TEXT)) = 'boss'"),
    ],
)
def test_core_attributes_come_from_the_json_document(dialect: str, expected: str) -> None:
    assert expected in sql('title eq "Boss"', dialect)


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("sqlite", 'json_extract(identities.doc, \'$."name"."familyName"\')'),
        ("postgresql", "identities.doc #>> ARRAY['name', 'familyName']"),
    ],
)
def test_sub_attributes_come_from_the_json_document(dialect: str, expected: str) -> None:
    assert expected in sql('name.familyName eq "Jensen"', dialect)


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("sqlite", f'json_extract(identities.doc, \'$."{ENTERPRISE}"."employeeNumber"\')'),
        ("postgresql", f"identities.doc #>> ARRAY['{ENTERPRISE}', 'employeeNumber']"),
    ],
)
def test_extension_attributes_live_under_their_urn(dialect: str, expected: str) -> None:
    assert expected in sql(f'{ENTERPRISE}:employeeNumber eq "42"', dialect)
    assert expected in sql(f'{ENTERPRISE.upper()}:EMPLOYEENUMBER eq "42"', dialect)


@pytest.mark.parametrize(
    ("dialect", "rows", "value"),
    [
        (
            "sqlite",
            "FROM json_each(identities.doc, '$.\"phoneNumbers\"') AS element",
            "json_extract(element.value, '$.\"type\"')",
        ),
        (
            "postgresql",
            "FROM jsonb_array_elements(identities.doc #> ARRAY['phoneNumbers']) WITH ORDINALITY AS "
            "element(value, position)",
            "element.value #>> ARRAY['type']",
        ),
    ],
)
def test_multi_valued_json_attributes_are_an_exists_over_their_elements(dialect: str, rows: str, value: str) -> None:
    text = sql('phoneNumbers[type eq "mobile" and value sw "+1"]', dialect)
    assert text.count("EXISTS") == 1
    assert rows in text
    assert value in text


@BOTH
def test_schemas_is_filterable_as_in_the_rfc_example(dialect: str) -> None:
    """RFC 7644 3.4.2.2: ``filter=schemas eq "urn:...:enterprise:2.0:User"``."""
    text = sql(f'schemas eq "{ENTERPRISE}"', dialect)
    assert "EXISTS" in text
    assert f"'{ENTERPRISE.lower()}'" in text


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("sqlite", "CAST(json_extract(identities.doc, '$.\"level\"') AS FLOAT) > 5"),
        ("postgresql", "CAST(identities.doc #>> ARRAY['level'] AS FLOAT) > 5"),
    ],
)
def test_numbers_compare_as_numbers(dialect: str, expected: str) -> None:
    assert expected in sql("level gt 5", dialect, DEVICE_TYPE)
    assert "2.5" in sql("weight le 2.5", dialect, DEVICE_TYPE)


@pytest.mark.parametrize(
    ("dialect", "expected", "value"),
    [
        (
            "sqlite",
            "strftime('%Y-%m-%d %H:%M:%f', json_extract(identities.doc, '$.\"seen\"'))",
            "2020-01-02 03:04:05.000",
        ),
        (
            "postgresql",
            "CAST(identities.doc #>> ARRAY['seen'] AS TIMESTAMP WITHOUT TIME ZONE)",
            datetime(2020, 1, 2, 3, 4, 5),
        ),
    ],
)
def test_json_date_times_compare_as_instants(dialect: str, expected: str, value: Any) -> None:
    """Stored dateTime text may or may not carry fractional seconds: compare instants, not strings."""
    assert expected in sql('seen ge "2020-01-02T04:04:05+01:00"', dialect, DEVICE_TYPE)
    assert value in params('seen ge "2020-01-02T04:04:05+01:00"', dialect, DEVICE_TYPE).values()


# -- operators ------------------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    ("op", "pattern"),
    [
        ("co", "'%50\\%\\_off\\\\%'"),
        ("sw", "'50\\%\\_off\\\\%'"),
        ("ew", "'%50\\%\\_off\\\\'"),
    ],
)
def test_like_wildcards_in_values_are_escaped(dialect: str, op: str, pattern: str) -> None:
    r"""co/sw/ew are substring tests: a ``%``, ``_`` or ``\`` in the value matches only itself."""
    text = sql(f'title {op} "50%_OFF\\\\"', dialect)
    assert f"LIKE {pattern} ESCAPE '\\'" in text


@BOTH
@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("co", "replace(identities.external_id, 'Ab', '') != identities.external_id"),
        ("sw", "substr(identities.external_id, 1, 2) = 'Ab'"),
        ("ew", "substr(identities.external_id, length(identities.external_id) - 1) = 'Ab'"),
    ],
)
def test_substring_tests_on_case_exact_attributes_are_case_sensitive(dialect: str, op: str, check: str) -> None:
    """SQLite's LIKE ignores ASCII case; a caseExact attribute is re-checked exactly."""
    text = sql(f'externalId {op} "Ab"', dialect)
    assert check in text
    assert "lower(" not in text


@BOTH
def test_every_leaf_is_never_null_so_not_is_two_valued(dialect: str) -> None:
    """A user without title matches ``not (title eq "x")``: each comparison guards against NULL."""
    title = (
        "CAST(json_extract(identities.doc, '$.\"title\"') AS TEXT)"
        if dialect == "sqlite"
        else ("CAST(identities.doc #>> ARRAY['title'] AS TEXT)")
    )
    assert f"NOT ({title} IS NOT NULL AND lower({title}) = 'x')" in sql('not (title eq "x")', dialect)
    assert f"{title} IS NULL OR lower({title}) != 'x'" in sql('title ne "x"', dialect)
    assert f"NOT ({title} IS NOT NULL AND {title} != '')" in sql("title eq null", dialect)
    assert f"{title} IS NOT NULL AND {title} != ''" in sql("title pr", dialect)


@BOTH
def test_ne_on_a_multi_valued_attribute_also_matches_when_it_is_unassigned(dialect: str) -> None:
    text = sql('emails.type ne "work"', dialect)
    assert text.count("EXISTS") == 2
    assert "OR NOT (EXISTS" in text


@BOTH
def test_and_or_not_nest_as_parsed(dialect: str) -> None:
    """RFC 7644 3.4.2.2 precedence: ``a or b and c`` is ``a or (b and c)``."""
    text = sql('userName eq "a" or userName eq "b" and externalId eq "c"', dialect)
    assert text.endswith(
        "WHERE identities.user_name_lower IS NOT NULL AND identities.user_name_lower = 'a' OR "
        "identities.user_name_lower IS NOT NULL AND identities.user_name_lower = 'b' AND "
        "identities.external_id IS NOT NULL AND identities.external_id = 'c'"
    )
    grouped = sql('(userName eq "a" or userName eq "b") and externalId eq "c"', dialect)
    assert "WHERE (identities.user_name_lower IS NOT NULL" in grouped


# -- invalid filters ----------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    ("filter_text", "rt"),
    [
        ('nickNameX eq "x"', USER_TYPE),  # unknown attribute
        ('name.nope eq "x"', USER_TYPE),  # unknown sub-attribute
        ('urn:example:nope:User:title eq "x"', USER_TYPE),  # unknown schema
        ('userName eq "x"', GROUP_TYPE),  # an attribute of another resource type
        ('active co "t"', USER_TYPE),  # substring operators on a boolean
        ('active sw "t"', USER_TYPE),
        ("active gt true", USER_TYPE),  # RFC 7644 3.4.2.2: ordering booleans is invalidFilter
        ('active eq "true"', USER_TYPE),  # a boolean compared with a string
        ('blob gt "AA=="', DEVICE_TYPE),  # RFC 7644 3.4.2.2: ordering binary is invalidFilter
        ('level eq "5"', DEVICE_TYPE),  # a number attribute compared with a string
        ("level eq true", DEVICE_TYPE),
        ('level co "5"', DEVICE_TYPE),
        ("title eq 5", USER_TYPE),  # a string attribute compared with a number
        ("title eq true", USER_TYPE),
        ("title gt null", USER_TYPE),
        ('meta.created gt "yesterday"', USER_TYPE),
        ('meta.created co "2020"', USER_TYPE),
        ('meta.location eq "x"', USER_TYPE),
        ('name eq "x"', USER_TYPE),  # a complex attribute without sub-attribute
        ('userName[value eq "x"]', USER_TYPE),  # [filter] on a single-valued attribute
        ('name[givenName eq "x"]', USER_TYPE),
        ('emails[nope eq "x"]', USER_TYPE),
        ('addresses eq "x"', USER_TYPE),  # addresses has no "value" sub-attribute
        ('tags[nope eq "x"]', DEVICE_TYPE),
        ('members.display eq "x"', GROUP_TYPE),  # not stored, so not filterable
        ('password eq "x"', USER_TYPE),  # returned never: a filter would be an oracle
    ],
)
def test_invalid_filters_raise_invalid_filter(dialect: str, filter_text: str, rt: ResourceType) -> None:
    with pytest.raises(InvalidFilter):
        FilterCompiler(rt, dialect).compile(parse_filter(filter_text))


# -- sortBy -------------------------------------------------------------------------------------------------


def sort_sql(path: str, dialect: str, rt: ResourceType = USER_TYPE) -> str:
    key = sort_expression(rt, dialect, parse_attr_path(path))
    statement = sa.select(identities.c.id).order_by(key)
    return " ".join(str(statement.compile(dialect=DIALECTS[dialect], compile_kwargs={"literal_binds": True})).split())


def test_sort_keys_put_unassigned_values_last_when_ascending() -> None:
    """RFC 7644 3.4.2.3: no value sorts last ascending, first descending; PostgreSQL does that itself."""
    assert sort_sql("userName", "postgresql").endswith("ORDER BY identities.user_name_lower")
    assert sort_sql("userName", "sqlite").endswith("ORDER BY coalesce(identities.user_name_lower, x'')")


@BOTH
def test_sort_keys(dialect: str) -> None:
    assert "lower(" in sort_sql("name.familyName", dialect)
    assert "familyName" in sort_sql("name.familyName", dialect)
    assert "employeeNumber" in sort_sql(f"{ENTERPRISE}:employeeNumber", dialect)
    assert "identities.created" in sort_sql("meta.created", dialect)
    assert "lower(" not in sort_sql("externalId", dialect)


@BOTH
def test_sort_by_emails_uses_the_primary_email_else_the_first(dialect: str) -> None:
    text = sort_sql("emails.value", dialect)
    assert (
        "(SELECT email.value_lower FROM identity_emails AS email WHERE email.identity_id = identities.id "
        'ORDER BY CASE WHEN (email."primary" IS '
    ) in text
    assert "THEN 0 ELSE 1 END, email.position" in text


@BOTH
def test_sort_by_a_multi_valued_json_attribute(dialect: str) -> None:
    text = sort_sql("phoneNumbers.value", dialect)
    assert "primary" in text
    assert "LIMIT 1" in text


@BOTH
@pytest.mark.parametrize("path", ["groups.value", "name", "members"])
def test_unsortable_attributes(dialect: str, path: str) -> None:
    with pytest.raises(InvalidValue):
        sort_expression(GROUP_TYPE if path == "members" else USER_TYPE, dialect, parse_attr_path(path))


@BOTH
def test_sort_by_unknown_or_secret_attributes_is_refused(dialect: str) -> None:
    for path in ("nope", "password"):
        with pytest.raises(InvalidFilter):
            sort_expression(USER_TYPE, dialect, parse_attr_path(path))


def test_single_valued_complex_attribute_compares_by_its_value() -> None:
    """``manager eq "id"`` compares manager.value, as a multi-valued attribute compares by value."""
    text = sql(f'{ENTERPRISE}:manager eq "boss"', "sqlite")
    assert '"manager"."value"' in text


# -- what an index can answer (issue 18) ----------------------------------------------------------------


def test_sw_on_a_lower_cased_column_is_also_an_index_range_on_sqlite() -> None:
    """SQLite uses an index for LIKE 'x%' only on a NOCASE column: the range bounds it to the index."""
    text = sql('userName sw "Ad"', "sqlite")
    assert "identities.user_name_lower LIKE 'ad%' ESCAPE '\\'" in text
    assert "identities.user_name_lower >= 'ad' AND identities.user_name_lower < 'ae'" in text


def test_sw_is_no_range_on_postgresql_whose_collation_orders_otherwise() -> None:
    """PostgreSQL's prefix index (text_pattern_ops) answers LIKE 'x%' itself; a range in its collation would not."""
    assert ">=" not in sql('userName sw "ad"', "postgresql")


def test_sw_on_a_case_exact_or_json_attribute_is_no_range() -> None:
    assert ">=" not in sql('externalId sw "Ad"', "sqlite")
    assert ">=" not in sql('title sw "Ad"', "sqlite")


def test_the_prefix_range_holds_every_value_that_starts_with_the_prefix() -> None:
    """On a real SQLite: the range keeps exactly what LIKE keeps, with wildcards and letters past ASCII."""
    engine = sa.create_engine("sqlite://")
    names = ["ad", "ad_x", "adz", "ae", "ac", "a_d", "aé", "aéz", "aê", "a%", "a", "ÿa", "ÿ", "Āb"]
    identities.create(engine)
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            identities.insert(),
            [
                {
                    "id": f"i{n}",
                    "resource_type": "User",
                    "user_name": name,
                    "user_name_lower": name.lower(),
                    "doc": {},
                    "created": now,
                    "last_modified": now,
                    "version": 1,
                }
                for n, name in enumerate(names)
            ],
        )
        for prefix in ["ad", "a_", "aé", "a%", "a", "ÿ", "ā", "AD"]:
            found = {row[0] for row in conn.execute(where(f'userName sw "{prefix}"', "sqlite"))}
            expected = {f"i{n}" for n, name in enumerate(names) if name.lower().startswith(prefix.lower())}
            assert found == expected, prefix


@pytest.mark.parametrize(
    ("filter_text", "scans"),
    [
        ('userName co "x"', True),
        ('title ew "x"', True),
        ('userName sw "x" and not (displayName co "y")', True),
        ('emails[value co "@corp"]', True),
        ('userName sw "x" or userName eq "y"', False),
        ("active pr", False),
    ],
)
def test_substring_matches_are_found_wherever_they_nest(filter_text: str, scans: bool) -> None:
    assert has_substring_match(parse_filter(filter_text)) is scans
