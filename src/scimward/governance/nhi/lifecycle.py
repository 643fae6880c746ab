"""The NHI worker's round: the leaver cascade, expiry, the hub tokens of leavers, and the NHI findings.

Level-triggered, like propagation: each round looks at the effective state now, so a round that
crashes loses nothing the next one does not redo, and an owner who comes back stops what their
departure started. The round runs every few seconds in ``serve`` and ``scimward worker``
(``run_nhi_schedule``); docs/non-human-identities.md says why here and not in the owner's own
transaction.

Leaver cascade (policy ``nhi.owner_leaves``, ``nhi.grace``): an NHI is *orphaned* when every one of
its owners is gone (a User inactive or deleted in the effective state; a Group deleted). An NHI with
at least one owner left is not touched (co-owned). An orphaned, active NHI:

- ``disable``: is disabled when the grace period since its orphaning has run out (0: at once);
- ``reassign``: the leaver's manager is asked to take it over (a finding owned by the manager,
  accepted with ``scimward nhi transfer``); unaccepted at the end of the grace, it is disabled;
- ``hold``: stays as it is, with an NHI1 finding, until someone decides.

Every disable is a change through the gate (source ``nhi:cascade``; ``nhi:expiry`` for expiry), so the
policy's rules and the mass-change breaker guard a cascade as they guard an IdP's deactivations, and
propagation deprovisions the NHI in every target. Hub tokens owned by a leaver are revoked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog

from scimward.governance.nhi import actions
from scimward.governance.nhi.findings import observe_nhis
from scimward.governance.nhi.model import NHI_TYPES, expires_of, name_of, owners_of
from scimward.policy.nhi_settings import NhiSettings
from scimward.policy.policies import current
from scimward.scim.errors import ScimError
from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.governance import nhi_rows
from scimward.store.governance.nhi_rows import EffectiveIdentity, NhiState
from scimward.store.identity import IdentityStore
from scimward.store.timeutil import utcnow

log = structlog.get_logger("scimward.governance.nhi")

CASCADE = "nhi:cascade"
EXPIRY = "nhi:expiry"


@dataclass
class RoundResult:
    disabled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    reassigning: dict[str, str] = field(default_factory=dict)
    tokens_revoked: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


async def nhi_round(database: Database, store: IdentityStore, user_types: frozenset[str], *,
                    now: datetime | None = None, findings: bool = True) -> RoundResult:
    now = now or utcnow()
    settings = (await current(database)).nhi
    result = RoundResult()
    nhis = await nhi_rows.effective_of_types(database, NHI_TYPES, user_types)
    owner_ids = {o.id for nhi in nhis for o in owners_of(nhi.resource_type, nhi.doc)}
    tokens = TokenStore(database)
    owned_tokens = await tokens.owned()
    people = await nhi_rows.effective_by_id(database, owner_ids | set(owned_tokens.values()))
    managers = {m for p in people.values() if (m := _manager(p)) and m not in people}
    people.update(await nhi_rows.effective_by_id(database, managers))  # who a leaver's NHIs go to
    states = await nhi_rows.states(database)
    alive = {i for i, person in people.items() if person.resource_type == "Group" or person.active}
    for nhi in nhis:
        await _follow(database, store, settings, nhi, alive, people, states.get(nhi.id), now, result)
    gone_token_owners = sorted({owner for owner in owned_tokens.values() if owner not in alive})
    result.tokens_revoked = await tokens.revoke_owned_by(gone_token_owners)
    stale = set(states) - {n.id for n in nhis}
    if stale:
        await nhi_rows.forget_states(database, stale)
    if findings:
        await observe_nhis(database, settings, nhis, alive, people, result.reassigning, now)
    for name in result.tokens_revoked:
        log.info("hub token of a leaver revoked", token=name)
    return result


async def _follow(database: Database, store: IdentityStore, settings: NhiSettings, nhi: EffectiveIdentity,
                  alive: set[str], people: dict[str, EffectiveIdentity], state: NhiState | None, now: datetime,
                  result: RoundResult) -> None:
    owners = owners_of(nhi.resource_type, nhi.doc)
    expires = expires_of(nhi.doc)
    if nhi.active and expires is not None and expires <= now:
        # Once: if the disable is held, or someone enables it again, the next round does not insist.
        if (state is None or state.last_action != "expired") and await _disable(store, nhi, EXPIRY, result):
            result.expired.append(nhi.id)
            await nhi_rows.save_state(database, NhiState(nhi.id, state.orphaned_since if state else None,
                                                         "expired", now, state.left_owner if state else None))
        return
    if not owners or any(o.id in alive for o in owners):
        if state is not None and state.orphaned_since is not None:
            await nhi_rows.forget_states(database, [nhi.id])  # an owner is back, or it was transferred
        return
    if state is None or state.orphaned_since is None:
        state = NhiState(nhi.id, now, None, None, owners[0].id)
        await nhi_rows.save_state(database, state)
    result.orphaned.append(nhi.id)
    if not nhi.active or settings.owner_leaves == "hold":
        return
    assert state.orphaned_since is not None
    if settings.owner_leaves == "reassign":
        manager = _manager(people.get(state.left_owner or ""))
        if manager is not None and manager in alive:
            result.reassigning[nhi.id] = manager
    if now - state.orphaned_since < settings.grace or state.last_action == "disabled":
        return  # in its grace period; or disabled once already (held, or enabled again by a person)
    if await _disable(store, nhi, CASCADE, result):
        result.disabled.append(nhi.id)
        await nhi_rows.save_state(database, NhiState(nhi.id, state.orphaned_since, "disabled", now, state.left_owner))


async def _disable(store: IdentityStore, nhi: EffectiveIdentity, source: str, result: RoundResult) -> bool:
    try:
        await actions.set_active(store, nhi.resource_type, nhi.id, False, source=source, actor=source)
    except ScimError as refused:  # denied by a rule, or the NHI went meanwhile: next round sees it
        result.refused[nhi.id] = refused.detail
        log.warning("NHI not disabled", nhi=name_of(nhi.resource_type, nhi.doc), source=source, reason=refused.detail)
        return False
    return True


def _manager(person: EffectiveIdentity | None) -> str | None:
    if person is None:
        return None
    manager = (person.doc.get(ENTERPRISE_USER_SCHEMA) or {}).get("manager")
    value = manager.get("value") if isinstance(manager, dict) else None
    return value if isinstance(value, str) and value else None
