"""The NHI register the command line and admins use: add, list, show, transfer, rotate, retire, adopt.

Every NHI of the hub is in it: Agents (any kind), Users whose ``userType`` marks a service account,
and the hub's own API tokens that have an owner. Each action is a change through the gate (source
``cli``, ``api`` or the caller's, e.g. ``console``; the actor who runs it), except a hub token's rotation
and transfer, which are token records.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scimward.governance.nhi import actions
from scimward.governance.nhi.model import (
    NHI_TYPES,
    expires_of,
    extension,
    iso,
    kind_of,
    name_of,
    owners_of,
)
from scimward.policy import identity_store
from scimward.scim.agents import AGENT_SCHEMA, NHI_KINDS, NHI_SCHEMA
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.errors import InvalidValue, NotFound
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE, ENTERPRISE_USER_SCHEMA, USER_TYPE
from scimward.store.auth import TokenInfo, TokenStore
from scimward.store.database import Database
from scimward.store.governance import FindingStore, nhi_rows
from scimward.store.governance.nhi_rows import EffectiveIdentity
from scimward.store.identity import IdentityStore, SearchQuery
from scimward.store.timeutil import utcnow

#: The source of the register's changes when its caller names none (the command line's).
SOURCE = "cli"


@dataclass
class NhiView:
    id: str
    name: str
    kind: str
    resource_type: str  # Agent, User, or Token (a hub API token)
    owners: list[str]
    active: bool
    expires: datetime | None
    purpose: str | None = None
    environment: str | None = None
    orphaned: bool = False
    credentials: list[dict[str, Any]] = field(default_factory=list)
    #: Registered, but the gate holds it (the policy's requirements, a rule): not effective yet.
    pending: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "owners": self.owners,
            "active": self.active,
            "expires": iso(self.expires) if self.expires else None,
            "id": self.id,
            "resource_type": self.resource_type,
            "purpose": self.purpose,
            "environment": self.environment,
            "orphaned": self.orphaned,
            "credentials": self.credentials,
            "pending": self.pending,
        }


class Registry:
    def __init__(
        self,
        database: Database,
        user_types: frozenset[str],
        store: IdentityStore | None = None,
        *,
        source: str = SOURCE,
    ) -> None:
        self.db = database
        #: The source of its changes: ``cli``, or ``api`` for the admin API's.
        self.source = source
        self.user_types = user_types
        self.store = store or identity_store(database)
        self.tokens = TokenStore(database)
        #: Where the register's changes come from (``cli``, ``console``): the gate and the audit trail say so.
        self.source = source

    # -- reads ------------------------------------------------------------------------------------

    async def all(self) -> list[NhiView]:
        nhis = await nhi_rows.effective_of_types(self.db, NHI_TYPES, self.user_types)
        tokens = [t for t in await self.tokens.list() if t.owner_id]
        owner_ids = {o.id for n in nhis for o in owners_of(n.resource_type, n.doc)} | {
            t.owner_id for t in tokens if t.owner_id
        }
        people = await nhi_rows.effective_by_id(self.db, owner_ids)
        views = [self._view(n, people) for n in nhis]
        views += [self._token_view(t, people) for t in tokens]
        return sorted(views, key=lambda v: (v.name.lower(), v.resource_type))

    async def views_of(self, ids: Sequence[str]) -> list[NhiView]:
        """The views of these identities (a page someone searched), in that order, their owners resolved at
        once; an identity whose creation the gate holds is left out (it is not an NHI yet)."""
        nhis = await nhi_rows.effective_by_id(self.db, set(ids))
        people = await nhi_rows.effective_by_id(
            self.db, {o.id for n in nhis.values() for o in owners_of(n.resource_type, n.doc)}
        )
        return [self._view(nhis[i], people) for i in ids if i in nhis]

    async def owned_tokens(self) -> list[NhiView]:
        """The hub's API tokens that have an owner, as NHIs."""
        tokens = [t for t in await self.tokens.list() if t.owner_id]
        people = await nhi_rows.effective_by_id(self.db, {t.owner_id for t in tokens if t.owner_id})
        return sorted((self._token_view(t, people) for t in tokens), key=lambda v: v.name.lower())

    async def query(
        self,
        *,
        owner: str | None = None,
        kind: str | None = None,
        expiring: timedelta | None = None,
        orphaned: bool = False,
    ) -> list[NhiView]:
        found = await self.all()
        now = utcnow()
        return [
            v
            for v in found
            if (owner is None or owner.lower() in (o.lower() for o in v.owners))
            and (kind is None or v.kind == kind)
            and (expiring is None or (v.expires is not None and v.expires <= now + expiring))
            and (not orphaned or v.orphaned)
        ]

    async def find(self, name: str) -> NhiView:
        matches = [v for v in await self.all() if v.name.lower() == name.lower()]
        if not matches:
            raise NotFound(f"no non-human identity named {name!r}")
        if len(matches) > 1:  # an Agent and a token of the same name: the Agent is meant
            matches = [v for v in matches if v.resource_type == "Agent"] or matches
        return matches[0]

    def _view(self, nhi: EffectiveIdentity, people: dict[str, EffectiveIdentity]) -> NhiView:
        owners = owners_of(nhi.resource_type, nhi.doc)
        ext = extension(nhi.doc)
        return NhiView(
            nhi.id,
            name_of(nhi.resource_type, nhi.doc),
            kind_of(nhi.resource_type, nhi.doc),
            nhi.resource_type,
            [_name(people.get(o.id), o.id) for o in owners],
            nhi.active,
            expires_of(nhi.doc),
            ext.get("purpose"),
            ext.get("environment"),
            orphaned=not owners or not any(_alive(people.get(o.id)) for o in owners),
            credentials=[c for c in ext.get("credentials") or () if isinstance(c, dict)],
        )

    @staticmethod
    def _token_view(token: TokenInfo, people: dict[str, EffectiveIdentity]) -> NhiView:
        owner = people.get(token.owner_id or "")
        return NhiView(
            f"token:{token.name}",
            token.name,
            "token",
            "Token",
            [_name(owner, token.owner_id or "")],
            token.status == "active",
            token.expires,
            orphaned=not _alive(owner),
            credentials=[
                {
                    "identifier": token.name,
                    "created": iso(token.created),
                    **({"lastUsed": iso(token.last_used)} if token.last_used else {}),
                }
            ],
        )

    # -- changes ----------------------------------------------------------------------------------

    async def add(
        self,
        name: str,
        kind: str,
        owners: list[str],
        *,
        purpose: str | None,
        expires_in: timedelta | None,
        environment: str | None,
        actor: str,
    ) -> NhiView:
        if kind not in NHI_KINDS:
            raise InvalidValue(f"--kind must be one of {', '.join(NHI_KINDS)}, not {kind!r}")
        owner_refs = [{"value": await self.user_id(o), "type": "User", "display": o} for o in owners]
        ext: dict[str, Any] = {"kind": kind}
        if purpose:
            ext["purpose"] = purpose
        if environment:
            ext["environment"] = environment
        if expires_in is not None:
            ext["expires"] = iso(utcnow() + expires_in)
        body = {
            "schemas": [AGENT_SCHEMA, NHI_SCHEMA],
            "name": name,
            "displayName": name,
            "active": True,
            "agentType": kind,
            "owners": owner_refs,
            NHI_SCHEMA: ext,
        }
        stored = await self.store.create(AGENT_TYPE, normalize(body, AGENT_TYPE), source=self.source, actor=actor)
        try:
            return await self.find(name)
        except NotFound:  # held by the gate: registered, waiting for approval
            view = self._view(EffectiveIdentity(stored.id, "Agent", stored.doc), {})
            view.owners, view.orphaned, view.pending = list(owners), False, True
            return view

    async def transfer(self, name: str, to: str, actor: str) -> NhiView:
        view = await self.find(name)
        new_owner = await self.user_id(to)
        if view.resource_type == "Token":
            await self.tokens.transfer(view.name, new_owner)
        elif view.resource_type == "User":
            await self.store.patch(
                USER_TYPE,
                view.id,
                {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [
                        {"op": "replace", "path": f"{ENTERPRISE_USER_SCHEMA}:manager", "value": {"value": new_owner}}
                    ],
                },
                source=self.source,
                actor=actor,
            )
        else:
            await actions.transfer(
                self.store,
                view.id,
                [{"value": new_owner, "type": "User", "display": to}],
                source=self.source,
                actor=actor,
            )
        return await self.find(name)

    async def rotate(
        self, name: str, actor: str, *, overlap: timedelta, identifier: str | None = None
    ) -> tuple[NhiView, str | None]:
        """Record a rotation; for a hub token, issue its successor (printed once) and let the old one
        expire after ``overlap``. The new token (or None) is returned beside the view."""
        view = await self.find(name)
        now = utcnow()
        if view.resource_type == "Token":
            old = await self.tokens.get(view.name)
            successor = await self.tokens.rotate(old, actor, overlap)
            return await self.find(successor[0]), successor[1]
        if view.resource_type != "Agent":
            raise InvalidValue(f"{name} is a {view.resource_type}: rotate its credential where it lives")
        stored = await self.store.get(AGENT_TYPE, view.id, with_members=False, with_groups=False)
        current = next((c for c in view.credentials if identifier is None or c.get("identifier") == identifier), None)
        credential = {
            **(current or {}),
            "identifier": identifier or (current or {}).get("identifier") or name,
            "lastRotated": iso(now),
        }
        credential.setdefault("created", iso(now))
        await actions.record_rotation(self.store, view.id, stored.doc, credential, source=self.source, actor=actor)
        return await self.find(name), None

    async def attest(self, name: str, actor: str) -> NhiView:
        """The owner confirms the NHI is still needed, as it is: ``lastReviewed`` now, through the gate."""
        view = await self.find(name)
        if view.resource_type != "Agent":
            raise InvalidValue(f"{name} is a {view.resource_type}: only Agents carry the NHI extension's review date")
        stored = await self.store.get(AGENT_TYPE, view.id, with_members=False, with_groups=False)
        op = "replace" if extension(stored.doc) else "add"
        await self.store.patch(
            AGENT_TYPE,
            view.id,
            {
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": op, "path": f"{NHI_SCHEMA}:lastReviewed", "value": iso(utcnow())}],
            },
            source=self.source,
            actor=actor,
        )
        return await self.find(name)

    async def retire(self, name: str, actor: str) -> NhiView:
        """Retire: a hub token is revoked; any other NHI is deleted through the gate, so every target
        deprovisions its accounts (each by its deprovisioning mode)."""
        view = await self.find(name)
        if view.resource_type == "Token":
            await self.tokens.revoke(view.name)
        else:
            await actions.retire(self.store, view.resource_type, view.id, source=self.source, actor=actor)
        view.active = False
        return view

    async def unmanaged(self, name_patterns: str) -> list[dict[str, Any]]:
        """Reconcile's orphaned accounts that look non-human: a non-human ``userType``, or a name matching
        one of ``name_patterns`` (shell patterns, case-insensitive). ``nhi adopt`` brings one under management."""
        patterns = [p.strip().lower() for p in name_patterns.split(",") if p.strip()]
        found = []
        for finding in await FindingStore(self.db).list(kinds=["orphaned_account"]):
            actual = finding.actual if isinstance(finding.actual, dict) else {}
            name = str(actual.get("userName") or actual.get("name") or actual.get("displayName") or finding.subject)
            user_type = str(actual.get("userType") or "").lower()
            why = (
                "userType " + user_type
                if user_type in self.user_types
                else next((f"name matches {p}" for p in patterns if fnmatch.fnmatchcase(name.lower(), p)), None)
            )
            if why is not None:
                found.append(
                    {
                        "target": finding.target,
                        "account": name,
                        "remote_id": finding.remote_id,
                        "why": why,
                        "adopt": f"scimward nhi adopt {finding.target} {name} --owner USER --kind KIND",
                    }
                )
        return found

    async def user_id(self, user_name: str) -> str:
        found = await self.store.search(
            USER_TYPE, SearchQuery(filter=Compare(AttrPath(None, "userName"), "eq", user_name), count=1)
        )
        if not found.items:
            raise NotFound(f"no user with userName {user_name!r}")
        return found.items[0].id


def _alive(person: EffectiveIdentity | None) -> bool:
    return person is not None and (person.resource_type == "Group" or person.active)


def _name(person: EffectiveIdentity | None, fallback: str) -> str:
    if person is None:
        return f"(deleted {fallback})"
    return str(person.doc.get("userName") or person.doc.get("displayName") or fallback)
