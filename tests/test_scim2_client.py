"""Round trips with scim2-client, a SCIM client nobody here wrote, against a live scimward.

The client discovers the server (``/ResourceTypes`` and ``/ServiceProviderConfig``) and builds its
requests from the scim2-models types: ``User[EnterpriseUser]`` and ``Group``. It validates every
response against those models, so a response that is not what RFC 7643/7644 promise fails here
even when the state behind it is right. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Email,
    EnterpriseUser,
    Extension,
    Group,
    GroupMember,
    ListResponse,
    Manager,
    Name,
    NotFoundException,
    PatchOp,
    Resource,
    Schema,
    ScimProvider,
    SearchRequest,
    UniquenessException,
    User,
)

from scimward.scim.agents import AGENT, AGENTIC_APPLICATION, NHI
from scimward.scim.resource_types import GOVERNANCE_GROUP
from tests.conftest import LiveServer

EnterpriseUserModel = User[EnterpriseUser]


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[SyncSCIMClient]:
    """A discovered client: the models are scim2-models' own, the resource types come from the server."""
    headers = {"Authorization": f"Bearer {live_server.token}"}
    with httpx2.Client(base_url=live_server.base_url, headers=headers, timeout=30) as http:
        # scim2-models has no Agent models: they are built from the schemas scimward publishes.
        agents = [Resource.from_schema(Schema.model_validate(s.to_scim(""))) for s in (AGENT, AGENTIC_APPLICATION)]
        extensions = [Extension.from_schema(Schema.model_validate(s.to_scim(""))) for s in (NHI, GOVERNANCE_GROUP)]
        scim = SyncSCIMClient(
            http, provider=ScimProvider(models=[User, EnterpriseUser, Group, *agents, *extensions], resource_types=[])
        )
        scim.discover()
        yield scim


# The client's methods return unions (resource | Error | dict | None) and the models declare aliased
# fields, which mypy cannot see through; these helpers return what the call returned, typed Any, so
# the tests read the models' attributes directly. Errors still raise: raise_scim_errors is on.


def create(client: SyncSCIMClient, resource: Any) -> Any:
    return client.create(resource)


def query_one(client: SyncSCIMClient, model: Any, resource_id: Any) -> Any:
    return client.query(model, resource_id)


def search(client: SyncSCIMClient, model: Any, filter_text: str) -> Any:
    return client.query(model, query_parameters=SearchRequest.model_validate({"filter": filter_text}))


def replace(client: SyncSCIMClient, resource: Any) -> Any:
    return client.replace(resource)


def modify(client: SyncSCIMClient, model: Any, resource_id: Any, *operations: dict[str, Any]) -> Any:
    """PATCH with a PatchOp[model] built from the operations, as the client's users write them."""
    return client.modify(model, resource_id, PatchOp[model].model_validate({"Operations": list(operations)}))


def delete(client: SyncSCIMClient, model: Any, resource_id: Any) -> Any:
    return client.delete(model, resource_id)


def new_user(client: SyncSCIMClient, user_name: str, manager: str | None = None) -> Any:
    user = EnterpriseUserModel(
        user_name=user_name,
        name=Name(given_name="Barbara", family_name="Jensen"),
        emails=[Email(value=user_name, type=Email.Type.work, primary=True)],
        active=True,
    )
    user[EnterpriseUser] = EnterpriseUser(
        employee_number="701984",
        department="Tour Operations",
        manager=Manager(value=manager, ref=None) if manager else None,
    )
    return create(client, user)


def member(user: Any) -> GroupMember:
    return GroupMember(value=user.id, ref=None, type="User")


def new_group(client: SyncSCIMClient, display_name: str, *members: Any) -> Any:
    return create(client, Group(display_name=display_name, members=[member(m) for m in members] or None))


# --- discovery ----------------------------------------------------------------------------------------------


def test_discovery_binds_the_enterprise_extension_to_users(client: SyncSCIMClient) -> None:
    """/ResourceTypes must declare the EnterpriseUser extension for User (and scimward's governance
    extension for Group), or the client cannot send them."""
    assert client.provider.model_for("User") is EnterpriseUserModel
    # Group carries the governance extension (access reviews): Group[GroupGovernance].
    group_model = client.provider.model_for("Group")
    assert group_model is not None and issubclass(group_model, Group) and group_model is not Group


# --- users ------------------------------------------------------------------------------------------------


def test_create_user_with_enterprise_extension(client: SyncSCIMClient, unique: str) -> None:
    boss = new_user(client, f"boss.{unique}@example.com")
    created = new_user(client, f"bjensen.{unique}@example.com", manager=boss.id)
    model = type(created)
    assert model is EnterpriseUserModel
    assert created.id and created.meta.resource_type == "User"
    assert created.user_name == f"bjensen.{unique}@example.com"
    assert created.name.given_name == "Barbara"
    assert created.emails[0].value == f"bjensen.{unique}@example.com" and created.emails[0].primary is True
    assert created[EnterpriseUser].employee_number == "701984"
    assert created[EnterpriseUser].manager.value == boss.id


def test_query_user_by_id_returns_what_was_created(client: SyncSCIMClient, unique: str) -> None:
    created = new_user(client, f"bjensen.{unique}@example.com")
    read = query_one(client, EnterpriseUserModel, created.id)
    assert read.id == created.id
    assert read.user_name == created.user_name
    assert read[EnterpriseUser].department == "Tour Operations"
    assert read.meta.version == created.meta.version


def test_query_users_by_filter_returns_a_list_response(client: SyncSCIMClient, unique: str) -> None:
    created = new_user(client, f"bjensen.{unique}@example.com")
    new_user(client, f"other.{unique}@example.com")
    found = search(client, EnterpriseUserModel, f'userName eq "bjensen.{unique}@example.com"')
    model = type(found)
    assert issubclass(model, ListResponse)
    assert found.total_results == 1
    assert [r.id for r in found.resources] == [created.id]


def test_create_duplicate_user_raises_uniqueness(client: SyncSCIMClient, unique: str) -> None:
    new_user(client, f"bjensen.{unique}@example.com")
    with pytest.raises(UniquenessException):
        new_user(client, f"BJENSEN.{unique}@example.com")


def test_replace_user_changes_core_and_extension_attributes(client: SyncSCIMClient, unique: str) -> None:
    created = new_user(client, f"bjensen.{unique}@example.com")
    read = query_one(client, EnterpriseUserModel, created.id)
    read.display_name = "Babs Jensen"
    read.title = "Tour Guide"
    read[EnterpriseUser].department = "Tours"
    replaced = replace(client, read)
    assert (replaced.display_name, replaced.title) == ("Babs Jensen", "Tour Guide")
    again = query_one(client, EnterpriseUserModel, created.id)
    assert (again.display_name, again.title, again[EnterpriseUser].department) == ("Babs Jensen", "Tour Guide", "Tours")
    assert again.meta.version != created.meta.version


def test_modify_user_with_patch_op(client: SyncSCIMClient, unique: str) -> None:
    created = new_user(client, f"bjensen.{unique}@example.com")
    modified = modify(
        client,
        EnterpriseUserModel,
        created.id,
        {"op": "replace", "path": "displayName", "value": "Babs"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "add", "path": "nickName", "value": "B"},
    )
    assert (modified.display_name, modified.active, modified.nick_name) == ("Babs", False, "B")
    again = query_one(client, EnterpriseUserModel, created.id)
    assert (again.display_name, again.active, again.nick_name) == ("Babs", False, "B")


def test_modify_user_removes_the_enterprise_manager(client: SyncSCIMClient, unique: str) -> None:
    boss = new_user(client, f"boss.{unique}@example.com")
    created = new_user(client, f"bjensen.{unique}@example.com", manager=boss.id)
    modify(
        client,
        EnterpriseUserModel,
        created.id,
        {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
    )
    again = query_one(client, EnterpriseUserModel, created.id)
    assert again[EnterpriseUser].manager is None
    assert again[EnterpriseUser].employee_number == "701984"


def test_delete_user_then_query_is_not_found(client: SyncSCIMClient, unique: str) -> None:
    created = new_user(client, f"bjensen.{unique}@example.com")
    assert delete(client, EnterpriseUserModel, created.id) is None
    with pytest.raises(NotFoundException):
        query_one(client, EnterpriseUserModel, created.id)


# --- groups -----------------------------------------------------------------------------------------------


def member_values(group: Any) -> set[str]:
    return {m.value for m in group.members or []}


def test_create_group_with_members(client: SyncSCIMClient, unique: str) -> None:
    a, b = (new_user(client, f"u{n}.{unique}@example.com") for n in (1, 2))
    created = new_group(client, f"Tour Guides {unique}", a, b)
    assert created.id and created.display_name == f"Tour Guides {unique}"
    assert member_values(created) == {a.id, b.id}
    read = query_one(client, Group, created.id)
    assert member_values(read) == {a.id, b.id}
    assert {m.type for m in read.members} == {"User"}
    assert all(str(m.ref).endswith(f"/Users/{m.value}") for m in read.members)


def test_user_lists_the_groups_it_belongs_to(client: SyncSCIMClient, unique: str) -> None:
    a, b = (new_user(client, f"u{n}.{unique}@example.com") for n in (1, 2))
    group = new_group(client, f"Tour Guides {unique}", a)
    assert [(g.value, g.display) for g in query_one(client, EnterpriseUserModel, a.id).groups] == [
        (group.id, f"Tour Guides {unique}")
    ]
    assert query_one(client, EnterpriseUserModel, b.id).groups in (None, [])


def test_modify_group_adds_and_removes_members(client: SyncSCIMClient, unique: str) -> None:
    a, b = (new_user(client, f"u{n}.{unique}@example.com") for n in (1, 2))
    group = new_group(client, f"Tour Guides {unique}", a)
    modified = modify(
        client,
        Group,
        group.id,
        {"op": "add", "path": "members", "value": [{"value": b.id}]},
        {"op": "remove", "path": f'members[value eq "{a.id}"]'},
    )
    assert member_values(modified) == {b.id}
    assert member_values(query_one(client, Group, group.id)) == {b.id}


def test_modify_group_renames_it(client: SyncSCIMClient, unique: str) -> None:
    group = new_group(client, f"Tour Guides {unique}")
    modify(client, Group, group.id, {"op": "replace", "path": "displayName", "value": f"Guides {unique}"})
    assert [g.id for g in search(client, Group, f'displayName eq "Guides {unique}"').resources] == [group.id]


def test_replace_group_sets_exactly_the_members_given(client: SyncSCIMClient, unique: str) -> None:
    a, b, c = (new_user(client, f"u{n}.{unique}@example.com") for n in (1, 2, 3))
    group = new_group(client, f"Tour Guides {unique}", a, b)
    read = query_one(client, Group, group.id)
    read.members = [member(c)]
    assert member_values(replace(client, read)) == {c.id}
    assert member_values(query_one(client, Group, group.id)) == {c.id}


def test_delete_group_keeps_its_members(client: SyncSCIMClient, unique: str) -> None:
    a = new_user(client, f"u.{unique}@example.com")
    group = new_group(client, f"Tour Guides {unique}", a)
    assert delete(client, Group, group.id) is None
    with pytest.raises(NotFoundException):
        query_one(client, Group, group.id)
    after = query_one(client, EnterpriseUserModel, a.id)
    assert after.id == a.id
    assert after.groups in (None, [])


def test_unknown_id_is_not_found(client: SyncSCIMClient) -> None:
    with pytest.raises(NotFoundException):
        query_one(client, Group, str(uuid.uuid4()))
