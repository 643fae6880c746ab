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

The round first decides, for every NHI, what is due (pure, from the state it read), then writes the
disables in chunks (``IdentityStore.patch_many``): each is still its own change, decided by the gate
and audited, but a chunk is one transaction whose writes run by statement, not one transaction each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from scimward.governance.nhi import actions
from scimward.governance.nhi.findings import observe_nhis
from scimward.governance.nhi.model import NHI_TYPES, expires_of, extension, name_of, owners_of
from scimward.policy.nhi_settings import NhiSettings
from scimward.policy.policies import current
from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.governance import nhi_rows
from scimward.store.governance.nhi_rows import EffectiveIdentity, NhiState
from scimward.store.identity import IdentityStore
from scimward.store.timeutil import parse_time, utcnow

log = structlog.get_logger("scimward.governance.nhi")

CASCADE = "nhi:cascade"
#: Disables written together (``IdentityStore.patch_many``): one transaction each.
CHUNK = 100
EXPIRY = "nhi:expiry"


@dataclass(frozen=True)
class _Due:
    """A disable the round decided on: the NHI, why (its source), and the state to save once it is done."""

    nhi: EffectiveIdentity
    source: str
    done: NhiState


@dataclass
class RoundResult:
    disabled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    reassigning: dict[str, str] = field(default_factory=dict)
    tokens_revoked: list[str] = field(default_factory=list)
    attestation_due: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


async def nhi_round(
    database: Database,
    store: IdentityStore,
    user_types: frozenset[str],
    *,
    now: datetime | None = None,
    findings: bool = True,
) -> RoundResult:
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
    saves: dict[str, NhiState] = {}
    due: list[_Due] = []
    for nhi in nhis:
        state = _attestation(nhi, people, states.get(nhi.id), now, result, saves)
        planned = _follow(settings, nhi, alive, people, state, now, result, saves)
        if planned is not None:
            due.append(planned)
    await _disable_all(store, due, result, saves)
    await nhi_rows.save_states(database, list(saves.values()))  # what the round learnt, in one transaction
    gone_token_owners = sorted({owner for owner in owned_tokens.values() if owner not in alive})
    result.tokens_revoked = await tokens.revoke_owned_by(gone_token_owners)
    stale = set(states) - {n.id for n in nhis}
    if stale:
        await nhi_rows.forget_states(database, stale)
    if findings:
        await observe_nhis(
            database, settings, nhis, alive, people, result.reassigning, now, set(result.attestation_due)
        )
    for name in result.tokens_revoked:
        log.info("hub token of a leaver revoked", token=name)
    return result


def _follow(
    settings: NhiSettings,
    nhi: EffectiveIdentity,
    alive: set[str],
    people: dict[str, EffectiveIdentity],
    state: NhiState | None,
    now: datetime,
    result: RoundResult,
    saves: dict[str, NhiState],
) -> _Due | None:
    """What this NHI's state asks for now: the state it learns goes to ``saves``; a disable is answered."""
    owners = owners_of(nhi.resource_type, nhi.doc)
    expires = expires_of(nhi.doc)
    if nhi.active and expires is not None and expires <= now:
        # Once: if the disable is held, or someone enables it again, the next round does not insist.
        if state is None or state.last_action != "expired":
            return _Due(
                nhi,
                EXPIRY,
                replace(state or NhiState(nhi.id, None, None, None, None), last_action="expired", last_action_at=now),
            )
        return None
    if not owners or any(o.id in alive for o in owners):
        if state is not None and state.orphaned_since is not None:  # an owner is back, or it was transferred
            saves[nhi.id] = replace(state, orphaned_since=None, last_action=None, last_action_at=None, left_owner=None)
        return None
    if state is None or state.orphaned_since is None:
        state = replace(
            state or NhiState(nhi.id, None, None, None, None),
            orphaned_since=now,
            last_action=None,
            last_action_at=None,
            left_owner=owners[0].id,
        )
        saves[nhi.id] = state
    result.orphaned.append(nhi.id)
    if not nhi.active or settings.owner_leaves == "hold":
        return None
    assert state.orphaned_since is not None
    if settings.owner_leaves == "reassign":
        manager = _manager(people.get(state.left_owner or ""))
        if manager is not None and manager in alive:
            result.reassigning[nhi.id] = manager
    if now - state.orphaned_since < settings.grace or state.last_action == "disabled":
        return None  # in its grace period; or disabled once already (held, or enabled again by a person)
    return _Due(nhi, CASCADE, replace(state, last_action="disabled", last_action_at=now))


def _attestation(
    nhi: EffectiveIdentity,
    people: dict[str, EffectiveIdentity],
    state: NhiState | None,
    now: datetime,
    result: RoundResult,
    saves: dict[str, NhiState],
) -> NhiState | None:
    """The mover rule: when the NHI's owners change, or an owner changes department or manager, the NHI
    is due for attestation (``nhi attest``) by whoever answers for it now."""
    fingerprint = owner_fingerprint(nhi, people)
    if state is not None and state.owner_fingerprint == fingerprint:
        if state.attest_since is not None:
            reviewed = parse_time(extension(nhi.doc).get("lastReviewed"))
            if reviewed is None or reviewed < state.attest_since.replace(microsecond=0):  # dates are to the second
                result.attestation_due.append(nhi.id)
        return state
    base = state or NhiState(nhi.id, None, None, None, None)
    # First sight records who answers for it; a change after that starts the attestation.
    changed = replace(
        base,
        owner_fingerprint=fingerprint,
        attest_since=now if state is not None and state.owner_fingerprint is not None else base.attest_since,
    )
    saves[nhi.id] = changed
    if changed.attest_since == now:
        result.attestation_due.append(nhi.id)
    return changed


def owner_fingerprint(nhi: EffectiveIdentity, people: dict[str, EffectiveIdentity]) -> str:
    parts = []
    for owner in sorted(owners_of(nhi.resource_type, nhi.doc), key=lambda o: o.id):
        doc = people[owner.id].doc if owner.id in people else {}
        enterprise = doc.get(ENTERPRISE_USER_SCHEMA) or {}
        manager = (enterprise.get("manager") or {}).get("value") if isinstance(enterprise, dict) else None
        department = enterprise.get("department") if isinstance(enterprise, dict) else None
        parts.append(f"{owner.id}|{department or ''}|{manager or ''}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


async def _disable_all(store: IdentityStore, due: list[_Due], result: RoundResult, saves: dict[str, NhiState]) -> None:
    """Each disable a change through the gate, written a chunk at a time; one refused (denied by a
    rule, or the NHI went meanwhile) is left for the next round to see."""
    groups: dict[tuple[str, str], list[_Due]] = {}
    for item in due:
        groups.setdefault((item.nhi.resource_type, item.source), []).append(item)
    for (resource_type, source), items in groups.items():
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            refused = await actions.disable_many(
                store, resource_type, [i.nhi.id for i in chunk], source=source, actor=source
            )
            for item in chunk:
                if item.nhi.id in refused:
                    result.refused[item.nhi.id] = refused[item.nhi.id].detail
                    log.warning(
                        "NHI not disabled",
                        nhi=name_of(item.nhi.resource_type, item.nhi.doc),
                        source=source,
                        reason=refused[item.nhi.id].detail,
                    )
                    continue
                (result.expired if source == EXPIRY else result.disabled).append(item.nhi.id)
                saves[item.nhi.id] = item.done


def _manager(person: EffectiveIdentity | None) -> str | None:
    if person is None:
        return None
    manager = (person.doc.get(ENTERPRISE_USER_SCHEMA) or {}).get("manager")
    value = manager.get("value") if isinstance(manager, dict) else None
    return value if isinstance(value, str) and value else None
