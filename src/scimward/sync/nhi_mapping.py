"""Desired state of a non-human identity on a target: an Agent body where the target serves /Agents,
else a User body with the target's ``nhi_user_type`` (docs/non-human-identities.md, "Pushing them").

Owners and parents are hub ids, meaningless on the target, and are not sent; neither is the NHI
extension (a target that does not know scimward's schema would refuse it). ``externalId`` is the
hub's id, as for Users: that is how an account is found again. Where they go (``nhi_resource``) is
asked of the target once, by propagate, reconcile and adoption alike.
"""

from __future__ import annotations

from typing import Any

from scimward.scim.agents import AGENT_SCHEMA
from scimward.scim.resource_types import USER_SCHEMA
from scimward.sync.client import TargetClient
from scimward.sync.errors import BadRequestError, NotFoundError

_AGENT_ATTRIBUTES = (
    "name",
    "displayName",
    "agentType",
    "active",
    "description",
    "entitlements",
    "roles",
    "subject",
    "protocols",
)


def desired_agent(identity_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [AGENT_SCHEMA], "externalId": identity_id}
    body.update({name: doc[name] for name in _AGENT_ATTRIBUTES if doc.get(name) is not None})
    return body


def desired_nhi_user(identity_id: str, doc: dict[str, Any], user_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "externalId": identity_id,
        "userName": doc.get("name"),
        "userType": user_type,
    }
    for name in ("displayName", "active", "entitlements", "roles"):
        if doc.get(name) is not None:
            body[name] = doc[name]
    return body


async def nhi_resource(client: TargetClient) -> str:
    """Where a target keeps NHIs: "Agents" when it announces the Agent resource type at /Agents, else
    "Users". A target that does not know the resource type answers 404 (or 400); any other failure is
    the caller's to handle like every other request's."""
    try:
        found = await client.get("ResourceTypes", "Agent")
    except (NotFoundError, BadRequestError):
        return "Users"
    return "Agents" if found.get("endpoint") == "/Agents" else "Users"
