"""Discovery: bring an account a target already holds under management as a non-human identity
(``scimward nhi adopt TARGET ACCOUNT --owner USER --kind K``).

The account is looked up where propagation would push the NHI (``/Agents`` where the target serves
it, else ``/Users``), by its name (``name`` or ``userName``) or its id. The hub then gets an Agent of
that name through the gate; the next push finds the account by that name and links it instead of
creating another one (propagation's adoption), so nothing is ever duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scimward.scim.errors import InvalidValue, NotFound
from scimward.store.database import Database
from scimward.store.provisioning import TargetRepository
from scimward.sync.client import TargetClient, eq_filter
from scimward.sync.errors import NotFoundError
from scimward.sync.nhi_mapping import nhi_resource
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import Target


@dataclass(frozen=True)
class Account:
    target: str
    environment: str | None
    resource: str  # Agents or Users
    id: str
    name: str
    doc: dict[str, Any]


async def find_account(database: Database, target_name: str, account: str, secrets: SecretBox | None = None) -> Account:
    target = Target.from_row(await TargetRepository(database).by_name(target_name))
    if not target.config.push_nhis:
        raise InvalidValue(
            f"target {target_name!r} does not take non-human identities: scimward target set {target_name} --nhis"
        )
    token = (secrets or SecretBox()).decrypt(target.row.token_encrypted)
    async with TargetClient(target.row.base_url, token) as client:
        resource = await nhi_resource(client)
        natural = "name" if resource == "Agents" else "userName"
        found = await client.find(resource, eq_filter(natural, account))
        if not found:
            try:
                found = [await client.get(resource, account)]
            except NotFoundError:
                found = []
    if len(found) != 1:
        raise NotFound(
            f"no account {account!r} in {resource} of target {target_name!r}"
            if not found
            else f"{len(found)} accounts match {account!r} on target {target_name!r}: give its id"
        )
    doc = found[0]
    return Account(
        target.name,
        target.config.environment,
        resource,
        str(doc["id"]),
        str(doc.get("name" if resource == "Agents" else "userName") or account),
        doc,
    )
