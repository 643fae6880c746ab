"""Desired state of a non-human identity on a target: an Agent body where the target serves /Agents,
else a User body with the target's ``nhi_user_type`` (docs/non-human-identities.md, "Pushing them").

Owners and parents are hub ids, meaningless on the target, and are not sent; neither is the NHI
extension (a target that does not know scimward's schema would refuse it). ``externalId`` is the
hub's id, as for Users: that is how an account is found again.
"""

from __future__ import annotations

from typing import Any

from scimward.scim.agents import AGENT_SCHEMA
from scimward.scim.resource_types import USER_SCHEMA

_AGENT_ATTRIBUTES = ("name", "displayName", "agentType", "active", "description", "entitlements", "roles",
                     "subject", "protocols")


def desired_agent(identity_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [AGENT_SCHEMA], "externalId": identity_id}
    body.update({name: doc[name] for name in _AGENT_ATTRIBUTES if doc.get(name) is not None})
    return body


def desired_nhi_user(identity_id: str, doc: dict[str, Any], user_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "externalId": identity_id, "userName": doc.get("name"),
                            "userType": user_type}
    for name in ("displayName", "active", "entitlements", "roles"):
        if doc.get(name) is not None:
            body[name] = doc[name]
    return body
