"""Filtering, sorting and paging end to end (RFC 7644 3.4.2), on SQLite and on PostgreSQL.

One small population of users and groups is created per backend; every query is scoped to it
(``userName sw "<prefix>"`` / ``displayName sw "<prefix>"``) so other tests' data never matters,
and every assertion is on the exact result set.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
EVERYONE = {"alice", "bob", "carol", "dave", "erin_x"}


@dataclass
class Population:
    prefix: str
    ids: dict[str, str] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def population(live_server: LiveServer) -> Iterator[Population]:
    """Five users, made so that each filter below tells them apart, and three groups."""
    people = Population(f"f{uuid.uuid4().hex[:10]}")
    p = people.prefix
    with live_server.client() as client:

        def user(short: str, user_name: str, **attributes: Any) -> None:
            body = _post(client, "/Users", {"schemas": [USER], "userName": user_name, **attributes})
            people.ids[short] = body["id"]
            people.created[short] = body["meta"]["created"]
            time.sleep(0.01)  # distinct meta.created, even at the millisecond precision GET shows

        user(
            "alice",
            f"{p}.Alice",
            externalId=f"Ext-{p}-A",
            displayName="Alice Zeta",
            name={"givenName": "Alice", "familyName": "Zeta"},
            title="Engineer",
            userType="Employee",
            active=True,
            emails=[
                {"value": "alice@corp.example", "type": "work", "primary": True},
                {"value": "alice@home.example", "type": "home"},
            ],
            phoneNumbers=[{"value": "+1-555-0001", "type": "mobile"}],
            addresses=[{"locality": "Oslo", "type": "work", "country": "NO"}],
            **{ENTERPRISE: {"employeeNumber": "1001", "department": "R&D"}},
        )
        # A work address and an @corp address, but not in the same email: emails[...] must not match.
        user(
            "bob",
            f"{p}.bob",
            externalId=f"ext-{p}-b",
            name={"givenName": "Bob", "familyName": "Young"},
            title="Manager",
            userType="Contractor",
            active=False,
            emails=[
                {"value": "zed@work.example", "type": "work"},
                {"value": "bob@corp.example", "type": "home", "primary": True},
            ],
            phoneNumbers=[{"value": "+1-555-0002", "type": "work"}],
            addresses=[{"locality": "Bergen"}],
            **{ENTERPRISE: {"employeeNumber": "1002", "department": "Sales"}},
        )
        user(
            "carol",
            f"{p}.carol",
            name={"givenName": "Carol", "familyName": "Xavier"},
            userType="Employee",
            active=True,
            emails=[{"value": "carol@corp.example", "type": "work"}],
            **{ENTERPRISE: {"employeeNumber": "0999", "department": "r&d", "manager": {"value": people.ids["bob"]}}},
        )
        user("dave", f"{p}.dave")  # nothing but a userName: every attribute unassigned
        user(
            "erin_x",
            f"{p}.erin_x",
            name={"familyName": "Walker"},
            title="engineer",
            active=True,
            emails=[{"value": "erin@CORP.example", "type": "Work", "primary": True}],
            phoneNumbers=[{"value": "+47 999", "type": "mobile"}],
            addresses=[{"locality": "oslo"}],
            **{ENTERPRISE: {"employeeNumber": "1003"}},
        )

        def group(short: str, *members: str) -> None:
            body = _post(
                client,
                "/Groups",
                {
                    "schemas": [GROUP],
                    "displayName": f"{p} {short}",
                    "members": [{"value": people.ids[m]} for m in members],
                },
            )
            people.groups[short] = body["id"]

        group("Admins", "alice", "bob")
        group("Staff", "carol")
        group("Empty")
    yield people


def users(scim: httpx.Client, people: Population, filter_text: str, **params: Any) -> set[str]:
    """The short names of the population's users that ``filter_text`` selects."""
    return set(user_list(scim, people, filter_text, **params))


def user_list(scim: httpx.Client, people: Population, filter_text: str, **params: Any) -> list[str]:
    scoped = f'({filter_text}) and userName sw "{people.prefix}."'
    # startIndex: index paging (RFC 7644 3.4.2.4), whatever the server's default pagination is.
    response = scim.get("/Users", params={"filter": scoped, "startIndex": 1, "count": 100, **params})
    assert response.status_code == 200, response.text
    return [r["userName"].split(".", 1)[1].lower() for r in response.json()["Resources"]]


def groups(scim: httpx.Client, people: Population, filter_text: str) -> set[str]:
    scoped = f'({filter_text}) and displayName sw "{people.prefix} "'
    response = scim.get("/Groups", params={"filter": scoped})
    assert response.status_code == 200, response.text
    return {r["displayName"].split(" ", 1)[1] for r in response.json()["Resources"]}


# -- every operator ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('userName eq "{p}.ALICE"', {"alice"}),  # userName is caseExact=false
        ('userName ne "{p}.alice"', EVERYONE - {"alice"}),
        ('userName co "ARO"', {"carol"}),
        ('userName sw "{p}.B"', {"bob"}),
        ('userName ew "VE"', {"dave"}),
        ('userName gt "{p}.bob"', {"carol", "dave", "erin_x"}),
        ('userName ge "{p}.BOB"', {"bob", "carol", "dave", "erin_x"}),
        ('userName lt "{p}.bob"', {"alice"}),
        ('userName le "{p}.bob"', {"alice", "bob"}),
        ("userName pr", EVERYONE),
        ('title eq "ENGINEER"', {"alice", "erin_x"}),
        ('title ne "Engineer"', {"bob", "carol", "dave"}),  # ne matches when title is unassigned
        ('title co "gin"', {"alice", "erin_x"}),
        ('title sw "man"', {"bob"}),
        ('title ew "ER"', {"alice", "bob", "erin_x"}),
        ('title gt "f"', {"bob"}),
        ('title ge "Manager"', {"bob"}),
        ('title lt "manager"', {"alice", "erin_x"}),
        ('title le "engineer"', {"alice", "erin_x"}),
        ("title pr", {"alice", "bob", "erin_x"}),
        ('name.familyName eq "zeta"', {"alice"}),
        ('name.givenName sw "c"', {"carol"}),
        ('name.familyName gt "X"', {"carol", "bob", "alice"}),
        ("name.givenName pr", {"alice", "bob", "carol"}),
        ("name pr", {"alice", "bob", "carol", "erin_x"}),  # a complex value with any sub-attribute
        ('userType eq "employee"', {"alice", "carol"}),
    ],
)
def test_string_operators(scim: httpx.Client, population: Population, template: str, expected: set[str]) -> None:
    """RFC 7644 3.4.2.2: eq ne co sw ew gt ge lt le pr on strings, case-insensitively unless caseExact."""
    assert users(scim, population, template.format(p=population.prefix)) == expected


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("active eq true", {"alice", "carol", "erin_x"}),
        ("active eq false", {"bob"}),
        ("active ne true", {"bob", "dave"}),
        ("active ne false", {"alice", "carol", "erin_x", "dave"}),
        ("active pr", {"alice", "bob", "carol", "erin_x"}),
        ("active eq null", {"dave"}),
        ("emails[primary eq true]", {"alice", "bob", "erin_x"}),
        ("not (emails[primary eq true])", {"carol", "dave"}),
    ],
)
def test_boolean_operators(scim: httpx.Client, population: Population, filter_text: str, expected: set[str]) -> None:
    assert users(scim, population, filter_text) == expected


def test_dates_compare_as_instants_at_the_precision_shown(scim: httpx.Client, population: Population) -> None:
    """meta.created gt/ge/lt/le/eq against the exact text a GET returned (RFC 7644 3.4.2.2 dateTime)."""
    carol = population.created["carol"]
    assert users(scim, population, f'meta.created eq "{carol}"') == {"carol"}
    assert users(scim, population, f'meta.created ne "{carol}"') == EVERYONE - {"carol"}
    assert users(scim, population, f'meta.created gt "{carol}"') == {"dave", "erin_x"}
    assert users(scim, population, f'meta.created ge "{carol}"') == {"carol", "dave", "erin_x"}
    assert users(scim, population, f'meta.created lt "{carol}"') == {"alice", "bob"}
    assert users(scim, population, f'meta.created le "{carol}"') == {"alice", "bob", "carol"}
    assert users(scim, population, f'meta.lastModified ge "{carol}"') == {"carol", "dave", "erin_x"}
    assert users(scim, population, 'meta.lastModified gt "2000-01-01T00:00:00Z"') == EVERYONE
    assert users(scim, population, 'meta.lastModified lt "2000-01-01T00:00:00+02:00"') == set()
    # The same instant written with an offset.
    instant = datetime.fromisoformat(carol.replace("Z", "+00:00"))
    shifted = instant.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    assert users(scim, population, f'meta.created eq "{shifted}"') == {"carol"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{e}:employeeNumber eq "1001"', {"alice"}),
        ('{e}:employeeNumber ne "1001"', EVERYONE - {"alice"}),
        ('{e}:employeeNumber co "99"', {"carol"}),
        ('{e}:employeeNumber sw "10"', {"alice", "bob", "erin_x"}),
        ('{e}:employeeNumber ew "3"', {"erin_x"}),
        ('{e}:employeeNumber gt "1001"', {"bob", "erin_x"}),
        ('{e}:employeeNumber ge "1001"', {"alice", "bob", "erin_x"}),
        ('{e}:employeeNumber lt "1001"', {"carol"}),
        ('{e}:employeeNumber le "1001"', {"alice", "carol"}),
        ("{e}:employeeNumber pr", EVERYONE - {"dave"}),
        ('{e}:department eq "R&D"', {"alice", "carol"}),
        ("not ({e}:department pr)", {"dave", "erin_x"}),
        ('{e}:manager.value eq "{bob}"', {"carol"}),
        ("{e}:manager pr", {"carol"}),
        ('{lower}:EMPLOYEENUMBER eq "1002"', {"bob"}),  # URNs and names are case-insensitive
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "{p}.carol"', {"carol"}),
        ('schemas eq "{e}"', EVERYONE - {"dave"}),  # the RFC 7644 3.4.2.2 example
    ],
)
def test_extension_attributes(scim: httpx.Client, population: Population, template: str, expected: set[str]) -> None:
    filter_text = template.format(
        e=ENTERPRISE, lower=ENTERPRISE.lower(), bob=population.ids["bob"], p=population.prefix
    )
    assert users(scim, population, filter_text) == expected


# -- logic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # and binds tighter than or: a or (b and c), never (a or b) and c
        ('userName eq "{p}.alice" or title eq "Manager" and userType eq "Contractor"', {"alice", "bob"}),
        ('userType eq "Employee" or title pr and active eq false', {"alice", "carol", "bob"}),
        ('(userType eq "Employee" or title pr) and active eq false', {"bob"}),
        ('title pr and userType eq "Employee" or userName eq "{p}.dave"', {"alice", "dave"}),
        ('title pr and (userType eq "Employee" or userName eq "{p}.dave")', {"alice"}),
        # not binds tighter than and
        ("not (title pr) and active eq true", {"carol"}),
        ("not (title pr and active eq true)", {"bob", "carol", "dave"}),
        ('not (not (title eq "Manager"))', {"bob"}),
        # two-valued not: unassigned attributes do not make a row disappear from both sides
        ('not (title eq "Engineer")', {"bob", "carol", "dave"}),
        ('title eq "Engineer" or not (title eq "Engineer")', EVERYONE),
        ("not (title pr)", {"carol", "dave"}),
        ("title eq null", {"carol", "dave"}),
        ("title ne null", {"alice", "bob", "erin_x"}),
        ('((userName eq "{p}.bob") or ((userName eq "{p}.carol")))', {"bob", "carol"}),
    ],
)
def test_logical_operators_precedence_and_grouping(
    scim: httpx.Client, population: Population, template: str, expected: set[str]
) -> None:
    """RFC 7644 3.4.2.2: ``not`` binds tighter than ``and``, ``and`` tighter than ``or``."""
    assert users(scim, population, template.format(p=population.prefix)) == expected


# -- multi-valued and complex attributes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('emails[type eq "work" and value co "@corp"]', {"alice", "carol", "erin_x"}),  # not bob
        ('emails[type eq "work"] and emails[value co "@corp"]', {"alice", "bob", "carol", "erin_x"}),
        ('emails.type eq "work" and emails.value co "@corp"', {"alice", "bob", "carol", "erin_x"}),
        ('emails[not (type eq "work")]', {"alice", "bob"}),
        ('emails[type eq "home" or primary eq true]', {"alice", "bob", "erin_x"}),
        ('emails.value ew "@CORP.example"', {"alice", "bob", "carol", "erin_x"}),
        ('emails co "home.example"', {"alice"}),  # the value sub-attribute is implied
        ('emails.value eq "ZED@work.example"', {"bob"}),
        ('emails.type ne "work"', {"alice", "bob", "dave"}),  # some email is not work, or none at all
        ("emails pr", EVERYONE - {"dave"}),
        ("emails eq null", {"dave"}),
        ('phoneNumbers[type eq "mobile"]', {"alice", "erin_x"}),
        ('phoneNumbers.value sw "+1-555"', {"alice", "bob"}),
        ('phoneNumbers[type eq "mobile" and value co "999"]', {"erin_x"}),
        ('addresses[locality eq "oslo"]', {"alice", "erin_x"}),
        ('addresses[locality eq "Bergen" and type pr]', set()),
        ('addresses.country eq "no"', {"alice"}),
        ("addresses pr", {"alice", "bob", "erin_x"}),
    ],
)
def test_multi_valued_attributes(
    scim: httpx.Client, population: Population, filter_text: str, expected: set[str]
) -> None:
    """A value filter ``attr[...]`` must hold within ONE value; ``attr.sub`` for any value."""
    assert users(scim, population, filter_text) == expected


def test_groups_of_users_and_members_of_groups(scim: httpx.Client, population: Population) -> None:
    ids, gids = population.ids, population.groups
    assert users(scim, population, f'groups.value eq "{gids["Admins"]}"') == {"alice", "bob"}
    assert users(scim, population, f'groups[display eq "{population.prefix} staff"]') == {"carol"}
    assert users(scim, population, "not (groups pr)") == {"dave", "erin_x"}
    assert groups(scim, population, f'members.value eq "{ids["alice"]}"') == {"Admins"}
    assert groups(scim, population, f'members[value eq "{ids["carol"]}" and type eq "user"]') == {"Staff"}
    assert groups(scim, population, f'not (members.value eq "{ids["alice"]}")') == {"Staff", "Empty"}
    assert groups(scim, population, "members pr") == {"Admins", "Staff"}
    assert groups(scim, population, f'displayName eq "{population.prefix} ADMINS"') == {"Admins"}


def test_case_insensitive_names_and_operators(scim: httpx.Client, population: Population) -> None:
    p = population.prefix
    assert users(scim, population, f'USERNAME EQ "{p}.alice"') == {"alice"}
    assert users(scim, population, 'Emails[TYPE Eq "WORK" AnD Value CO "@CORP"]') == {"alice", "carol", "erin_x"}
    assert users(scim, population, 'NAME.FAMILYNAME Eq "young" OR title PR') == {"alice", "bob", "erin_x"}
    assert users(scim, population, "NOT (Title pR)") == {"carol", "dave"}
    assert users(scim, population, "ACTIVE eq TRUE") == {"alice", "carol", "erin_x"}


def test_case_exact_attributes(scim: httpx.Client, population: Population) -> None:
    """externalId and id are caseExact (RFC 7643 3.1); userName is not."""
    p = population.prefix
    assert users(scim, population, f'externalId eq "Ext-{p}-A"') == {"alice"}
    assert users(scim, population, f'externalId eq "ext-{p}-a"') == set()
    assert users(scim, population, f'externalId ne "ext-{p}-a"') == EVERYONE
    assert users(scim, population, 'externalId sw "Ext"') == {"alice"}
    assert users(scim, population, 'externalId sw "EXT"') == set()
    assert users(scim, population, f'externalId co "-{p}-b"') == {"bob"}
    assert users(scim, population, f'externalId co "-{p}-B"') == set()
    assert users(scim, population, 'externalId ew "-A"') == {"alice"}
    assert users(scim, population, 'externalId ew "-a"') == set()
    assert users(scim, population, f'id eq "{population.ids["bob"]}"') == {"bob"}
    assert users(scim, population, f'id eq "{population.ids["bob"].upper()}"') == set()
    assert users(scim, population, f'userName eq "{p.upper()}.BOB"') == {"bob"}


def test_like_wildcards_are_literal(scim: httpx.Client, population: Population) -> None:
    assert users(scim, population, 'userName co "_x"') == {"erin_x"}
    assert users(scim, population, 'userName co "%"') == set()
    assert users(scim, population, 'userName ew "n_x"') == {"erin_x"}
    assert users(scim, population, 'userName co "\\\\"') == set()


# -- sorting and paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort_by", "ascending"),
    [
        ("userName", ["alice", "bob", "carol", "dave", "erin_x"]),
        ("name.familyName", ["erin_x", "carol", "bob", "alice", "dave"]),
        (f"{ENTERPRISE}:employeeNumber", ["carol", "alice", "bob", "erin_x", "dave"]),
        ("meta.created", ["alice", "bob", "carol", "dave", "erin_x"]),
        ("emails.value", ["alice", "bob", "carol", "erin_x", "dave"]),  # bob's primary, not his first, email
        ("emails", ["alice", "bob", "carol", "erin_x", "dave"]),
        ("title", ["alice", "erin_x", "bob", "carol", "dave"]),
        ("phoneNumbers.value", ["alice", "bob", "erin_x", "carol", "dave"]),
    ],
)
def test_sort(scim: httpx.Client, population: Population, sort_by: str, ascending: list[str]) -> None:
    """RFC 7644 3.4.2.3: unassigned values sort last ascending and first descending."""
    assert user_list(scim, population, "userName pr", sortBy=sort_by) == ascending
    assert user_list(scim, population, "userName pr", sortBy=sort_by, sortOrder="ascending") == ascending
    descending = user_list(scim, population, "userName pr", sortBy=sort_by, sortOrder="descending")
    assert set(descending) == set(ascending)
    # Ties keep their order (by creation) in both directions, so compare the sort keys only.
    if sort_by not in {"title", "phoneNumbers.value"}:
        assert descending == ascending[::-1]


def test_paging_with_a_filter(scim: httpx.Client, population: Population) -> None:
    scoped = f'userName sw "{population.prefix}." and not (userName eq "{population.prefix}.dave")'

    def page(**params: Any) -> dict[str, Any]:
        response = scim.get("/Users", params={"filter": scoped, "sortBy": "userName", **params})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def short(body: dict[str, Any]) -> list[str]:
        return [r["userName"].split(".", 1)[1].lower() for r in body.get("Resources", [])]

    first = page(startIndex=1, count=2)
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (4, 1, 2)
    assert short(first) == ["alice", "bob"]
    second = page(startIndex=3, count=2)
    assert (second["totalResults"], second["startIndex"], second["itemsPerPage"]) == (4, 3, 2)
    assert short(second) == ["carol", "erin_x"]
    last = page(startIndex=4, count=10)
    assert (last["totalResults"], last["itemsPerPage"], short(last)) == (4, 1, ["erin_x"])
    beyond = page(startIndex=9, count=2)
    assert (beyond["totalResults"], beyond["itemsPerPage"], short(beyond)) == (4, 0, [])
    counted = page(count=0)
    assert (counted["totalResults"], counted["itemsPerPage"], short(counted)) == (4, 0, [])


def test_search_by_post(scim: httpx.Client, population: Population) -> None:
    """POST /.search takes the same filter, sort and paging (RFC 7644 3.4.3)."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'emails[type eq "work" and value co "@corp"] and userName sw "{population.prefix}."',
        "sortBy": "name.familyName",
        "sortOrder": "descending",
        "startIndex": 1,
        "count": 2,
    }
    response = scim.post("/Users/.search", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["totalResults"] == 3
    assert [r["userName"].split(".", 1)[1].lower() for r in result["Resources"]] == ["alice", "carol"]


# -- bad filters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_text",
    [
        'nickNameX eq "x"',  # unknown attribute
        'name.middle eq "x"',  # unknown sub-attribute
        'urn:example:nope:2.0:User:title eq "x"',  # unknown schema
        "userName eq",  # syntax: missing value
        'userName eq "x" and',
        'userName "x"',
        'userName xx "x"',  # unknown operator
        "userName eq x",  # unquoted string
        '(userName eq "x"',  # unbalanced
        'userName eq "x")',
        'emails[type eq "work"',
        'emails[type eq "work"]]',
        'emails[type eq "work"].value',  # a PATCH path without a comparison is not a filter
        'emails[type[value eq "x"]]',
        "title gt 5",  # a string compared with a number
        "active gt true",  # ordering booleans
        'active co "t"',
        'active eq "true"',
        'meta.created gt "yesterday"',
        'name eq "x"',  # a complex attribute without sub-attribute
        'userName[value eq "x"]',  # [filter] on a single-valued attribute
        'name[givenName eq "x"]',
        'emails[nope eq "x"]',
        'password eq "secret"',  # never returned, so never a filter oracle
        'members.value eq "x"',  # Users have no members
        "",
    ],
)
def test_bad_filters_are_invalid_filter_errors(scim: httpx.Client, filter_text: str) -> None:
    """RFC 7644 3.4.2.2 / 3.12: an invalid filter is 400 with scimType invalidFilter."""
    response = scim.get("/Users", params={"filter": filter_text}) if filter_text else scim.get("/Users?filter=%20")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "400"
    assert body["scimType"] == "invalidFilter"
    assert body.get("detail")


def test_bad_filter_in_a_search_request(scim: httpx.Client) -> None:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "(title pr"}
    response = scim.post("/Users/.search", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidFilter"
