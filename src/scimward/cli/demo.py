"""A small demo organisation, loaded into an empty hub by ``scimward serve --demo``."""

from __future__ import annotations

from importlib import resources

from scimward.policy import identity_store, policies
from scimward.scim.resource import normalize
from scimward.scim.resource_types import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)
from scimward.store.database import Database
from scimward.store.identity import SearchQuery

PEOPLE = [
    ("ada.lovelace", "Ada", "Lovelace", "Engineering", "Employee"),
    ("grace.hopper", "Grace", "Hopper", "Engineering", "Employee"),
    ("alan.turing", "Alan", "Turing", "Research", "Employee"),
    ("katherine.johnson", "Katherine", "Johnson", "Research", "Employee"),
    ("margaret.hamilton", "Margaret", "Hamilton", "Engineering", "Employee"),
    ("linus.pauling", "Linus", "Pauling", "Research", "Contractor"),
    ("hedy.lamarr", "Hedy", "Lamarr", "Sales", "Employee"),
    ("claude.shannon", "Claude", "Shannon", "Security", "Employee"),
    ("radia.perlman", "Radia", "Perlman", "Security", "Employee"),
    ("barbara.liskov", "Barbara", "Liskov", "Engineering", "Contractor"),
    ("donald.knuth", "Donald", "Knuth", "Finance", "Employee"),
    ("frances.allen", "Frances", "Allen", "Finance", "Employee"),
]
DOMAIN = "example.com"


def example_policy() -> str:
    """The example policy shipped with scimward (``examples/policy.yaml`` in the repository)."""
    return resources.files("scimward.policy").joinpath("example-policy.yaml").read_text()


async def load_demo(database: Database) -> int:
    """Apply the example policy if none is in force, and create the demo people and groups unless the
    hub already holds users; returns users created."""
    if (await policies.current(database)).version == 0:
        await policies.apply(database, example_policy(), "scimward serve --demo")
    store = identity_store(database)
    existing = await store.search(USER_TYPE, SearchQuery(count=0))
    if existing.total:
        return 0
    ids: dict[str, str] = {}
    by_department: dict[str, list[str]] = {}
    for number, (user_name, given, family, department, user_type) in enumerate(PEOPLE, start=1):
        body = {
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": f"{user_name}@{DOMAIN}",
            "externalId": f"hr-{number:04d}",
            "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
            "displayName": f"{given} {family}",
            "userType": user_type,
            "active": number != 6,
            "emails": [{"value": f"{user_name}@{DOMAIN}", "type": "work", "primary": True}],
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": f"{number:04d}", "department": department},
        }
        stored = await store.create(USER_TYPE, normalize(body, USER_TYPE), source="demo")
        ids[user_name] = stored.id
        by_department.setdefault(department, []).append(stored.id)
    for department, members in sorted(by_department.items()):
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": f"dept-{department.lower()}",
            "members": [{"value": member} for member in members],
        }
        await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), source="demo")
    admins = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "prod-admins",
        "members": [{"value": ids["radia.perlman"]}, {"value": ids["grace.hopper"]}],
    }
    await store.create(GROUP_TYPE, normalize(admins, GROUP_TYPE), source="demo")
    return len(PEOPLE)
