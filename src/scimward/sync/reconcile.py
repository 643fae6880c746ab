"""Reconcile: read a target back, compare desired / last pushed / actual, record drift, optionally repair.

A run streams the target's Users, its Agents where it keeps non-human identities there, then its
Groups with their members, a page at a time (RFC 9865
cursors where the target offers them, index paging otherwise), the next page read while this one is
compared. For each page it asks the hub, in a few batched queries, for the links behind the remote
ids and the identities behind the links; ``sync.drift`` names the differences. Then it walks the
identities in the target's scope that it did not meet on the target: their accounts are missing.
Non-human identities (Agents of the hub) are reconciled where propagate pushes them (``nhi_resource``):
as Agents on a target that serves /Agents, else among its Users, next to the people, with the
desired state propagate sends (``sync.nhi_mapping``); so a pushed NHI is no orphan, and its drift is
reported as a User's is.
What it keeps for the whole run is the set of identity ids it met; accounts, members and
documents are held one page at a time.

Findings persist across runs (``store.governance.findings``). Repair (``--repair`` or the target's
``reconcile_repair``) goes through the normal propagation path: the run records on the link what the
application really holds (attributes as read, an extra member as acknowledged, a missing one as not)
and enqueues the identity, so the next push sends exactly the correction. An orphaned account has no
identity to push: it is never deleted. When the target's ``orphans`` is ``deactivate``, the run
enqueues its deactivation as an outbox row of its own, counted against the target's mass-change
breaker (``policy.orphans``), and propagate sends it like any push.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog

from scimward.policy.orphans import deactivate_orphan
from scimward.scim.ast import Filter
from scimward.scim.errors import ScimError
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import AGENT_TYPE, GROUP_TYPE, USER_TYPE
from scimward.scim.schema import ResourceType
from scimward.store.database import Database
from scimward.store.governance import FindingStore, Observation, Run, RunStore
from scimward.store.identity import IdentityStore
from scimward.store.provisioning import HubIdentity, Link, LinkStore, Outbox, Readback, TargetRepository, orphan_key
from scimward.store.timeutil import utcnow
from scimward.sync.client import DEFAULT_TIMEOUT, Resource, TargetClient
from scimward.sync.drift import (
    GROUP_OWNED,
    Drift,
    Kind,
    account_drift,
    acknowledge,
    member_path,
    membership_drift,
    missing_account_drift,
    orphan_drift,
    owned_paths,
    summary,
    unwanted_account_drift,
)
from scimward.sync.errors import TargetError
from scimward.sync.mapping import desired_group, desired_user, manager_id
from scimward.sync.nhi_mapping import desired_agent, desired_nhi_user, nhi_resource
from scimward.sync.probe import refresh
from scimward.sync.profile import Capabilities, strip
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import ReconcilePolicy, Target

log = structlog.get_logger("scimward.sync.reconcile")

#: Called with the phase ("Users", "Groups", "hub") and how many items it just got through.
Progress = Callable[[str, int], None]

HEARTBEAT_SECONDS = 15.0


@dataclass
class ReconcileReport:
    run_id: int
    target: str
    trigger: str
    repair: bool
    started: datetime
    finished: datetime
    users_read: int
    groups_read: int
    #: kind -> {"open", "new", "repaired"} of the findings this run saw.
    counts: dict[str, dict[str, int]]
    resolved: int
    enqueued: int
    orphans_deactivated: int
    #: Accounts read at the target's /Agents (NHIs pushed as Users are among ``users_read``).
    agents_read: int = 0

    @property
    def open(self) -> int:
        return sum(count["open"] for count in self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "target": self.target,
            "trigger": self.trigger,
            "repair": self.repair,
            "started": self.started.isoformat() + "Z",
            "finished": self.finished.isoformat() + "Z",
            "seconds": round((self.finished - self.started).total_seconds(), 3),
            "users_read": self.users_read,
            "agents_read": self.agents_read,
            "groups_read": self.groups_read,
            "open": self.open,
            "counts": {kind.value: self.counts.get(kind.value, {"open": 0, "new": 0, "repaired": 0}) for kind in Kind},
            "resolved": self.resolved,
            "enqueued": self.enqueued,
            "orphans_deactivated": self.orphans_deactivated,
        }


class Reconciler:
    """Reconciles targets against the hub; one run of a target at a time (``store.governance.findings.RunStore``)."""

    def __init__(
        self,
        database: Database,
        *,
        secrets: SecretBox | None = None,
        page_size: int = 500,
        group_page_size: int = 20,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.db = database
        self.secrets = secrets or SecretBox()
        self.page_size = page_size
        self.group_page_size = group_page_size
        self.timeout = timeout
        self.targets = TargetRepository(database)
        self.identities = IdentityStore(database)
        self.links = LinkStore(database)
        self.outbox = Outbox(database)
        self.readback = Readback(database)
        self.findings = FindingStore(database)
        self.runs = RunStore(database)

    async def run(
        self, name: str, *, repair: bool | None = None, trigger: str = "cli", progress: Progress | None = None
    ) -> ReconcileReport:
        """Reconcile the target ``name``. ``repair`` None follows the target's ``reconcile_repair``."""
        return await self.run_target(
            Target.from_row(await self.targets.by_name(name)), repair=repair, trigger=trigger, progress=progress
        )

    async def run_target(
        self, target: Target, *, repair: bool | None = None, trigger: str = "cli", progress: Progress | None = None
    ) -> ReconcileReport:
        if target.row.quarantined is not None:
            raise ScimError(
                f"target {target.name} is quarantined ({target.row.quarantine_reason}); "
                f"run `scimward target resume {target.name}` first"
            )
        policy = ReconcilePolicy.from_config(target.config.extra)
        repairing = policy.repair if repair is None else repair
        run = await self.runs.start(target.id, trigger, repairing)
        log.info("reconcile started", target=target.name, run=run.id, repair=repairing, trigger=trigger)
        state: _Run | None = None
        try:
            async with TargetClient(
                target.row.base_url, self.secrets.decrypt(target.row.token_encrypted), timeout=self.timeout
            ) as client:
                state = _Run(self, target, client, run, policy, repairing, progress or (lambda _phase, _n: None))
                await state.read_accounts()
                await state.read_groups()
                await state.walk_unseen()
                await self._refresh_profile(target, client)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.finish(
                run.id,
                users_read=state.users_read if state else 0,
                groups_read=state.groups_read if state else 0,
                counts=None,
                error=error,
            )
            log.warning("reconcile failed", target=target.name, run=run.id, error=error)
            raise
        await state.keep_unverified()
        resolved = await self.findings.resolve_unseen(target.id, run.started, [kind.value for kind in Kind])
        counts = await self.findings.counts(target.id, run.started)
        await self.runs.finish(run.id, users_read=state.users_read, groups_read=state.groups_read, counts=counts)
        report = ReconcileReport(
            run.id,
            target.name,
            trigger,
            repairing,
            run.started,
            utcnow(),
            state.users_read,
            state.groups_read,
            counts,
            resolved,
            state.enqueued,
            state.orphans_deactivated,
            state.agents_read,
        )
        log.info(
            "reconcile finished",
            target=target.name,
            run=run.id,
            open=report.open,
            resolved=resolved,
            users=state.users_read,
            groups=state.groups_read,
            enqueued=state.enqueued,
        )
        return report

    async def _refresh_profile(self, target: Target, client: TargetClient) -> None:
        """Probe again what the target evaluates (``sync.probe``): the periodic refresh of its profile.
        A probe that fails is the profile's loss, not the run's."""
        try:
            await refresh(self.db, target.id, target.row.config, client)
        except TargetError as error:
            log.warning("target probe failed", target=target.name, error=str(error))


@dataclass
class _Repairs:
    """What one page's repairs will write: links' states, and the pushes to enqueue by resource type."""

    states: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    pushes: dict[str, list[str]] = field(default_factory=dict)

    def push(self, resource_type: str, *identity_ids: str) -> None:
        self.pushes.setdefault(resource_type, []).extend(identity_ids)


@dataclass(frozen=True)
class _Holders:
    """Hub identities of one resource type that hold accounts on the target, and which of them it should
    have: its scope, and for NHIs whether it takes them at all (``push_nhis``)."""

    rt: ResourceType
    scope: Filter | None
    wanted: bool = True


class _Run:
    """One reconcile of one target: what it has met so far, and its pages."""

    def __init__(
        self,
        owner: Reconciler,
        target: Target,
        client: TargetClient,
        run: Run,
        policy: ReconcilePolicy,
        repairing: bool,
        progress: Progress,
    ) -> None:
        self.owner, self.target, self.client, self.run = owner, target, client, run
        self.policy, self.repairing, self.progress = policy, repairing, progress
        config = target.config
        self.scope = parse_filter(config.scope) if config.scope else None
        self.group_scope = parse_filter(config.group_scope) if config.group_scope else None
        self.owned = owned_paths(config.mapping)
        self.users = _Holders(USER_TYPE, self.scope)
        self.nhis = _Holders(AGENT_TYPE, parse_filter(config.nhi_scope) if config.nhi_scope else None, config.push_nhis)
        #: Where the target keeps NHIs ("Agents" or "Users"; None: it has none of the hub's).
        self.nhi_resource: str | None = None
        #: What the target was found not to store (``sync.profile``): never drift, never repaired.
        self.dropped = Capabilities.from_config(config.extra).dropped
        #: Identities whose linked account the run met on the target.
        self.seen: dict[str, set[str]] = {"User": set(), "Agent": set(), "Group": set()}
        #: identity id -> an account on the target naming it by externalId that the hub has not linked.
        self.unlinked: dict[str, dict[str, Any]] = {}
        #: (subject, attribute) of differences the run read on the target but did not report because a
        #: push that will carry them is on its way: not fixed yet, so their findings stay open.
        self.unverified: set[tuple[str, str]] = set()
        self.users_read = self.agents_read = self.groups_read = self.enqueued = self.orphans_deactivated = 0
        self._beat = time.monotonic()

    # -- reading the target ---------------------------------------------------------------------------

    async def read_accounts(self) -> None:
        """The target's Users, and its Agents where it keeps the hub's NHIs there."""
        if self.target.config.push_nhis or any(
            key.startswith("Agent:") for key in await self.owner.links.counts(self.target.id)
        ):
            self.nhi_resource = await nhi_resource(self.client)
        users = [self.users, self.nhis] if self.nhi_resource == "Users" else [self.users]
        self.users_read = await self._read("Users", users)
        if self.nhi_resource == "Agents":
            self.agents_read = await self._read("Agents", [self.nhis])

    async def _read(self, resource: str, holders: list[_Holders]) -> int:
        read = 0
        async for page in _prefetch(
            _pages(self.client.iterate(resource, page_size=self.owner.page_size), self.owner.page_size)
        ):
            await self._account_page(resource, holders, page)
            read += len(page)
            self.progress(resource, len(page))
            await self._heartbeat()
        return read

    async def read_groups(self) -> None:
        if not self.target.config.push_groups and not any(
            key.startswith("Group:") for key in await self.owner.links.counts(self.target.id)
        ):
            return  # the application's groups are all its own
        size = self.owner.group_page_size
        async for page in _prefetch(_pages(self.client.iterate("Groups", page_size=size), size)):
            await self._group_page(page)
            self.groups_read += len(page)
            self.progress("Groups", len(page))
            await self._heartbeat()

    async def _hub_of(
        self, holders: list[_Holders], links: dict[str, Link], claimed: set[str]
    ) -> dict[str, HubIdentity]:
        """The identities behind a page's links and the externalIds it claims, each read as its type;
        an NHI the target should not have (``push_nhis`` off) counts as out of scope."""
        hub: dict[str, HubIdentity] = {}
        for holder in holders:
            ids = {link.identity_id for link in links.values() if link.resource_type == holder.rt.name} | claimed
            found = await self.owner.readback.identities(holder.rt, ids, holder.scope)
            hub.update({i: h if holder.wanted else HubIdentity(h.id, h.doc, False) for i, h in found.items()})
        return hub

    def _desired(self, rt: ResourceType, identity: HubIdentity, manager_remote: str | None) -> dict[str, Any]:
        """What propagate sends for ``identity`` (``push_user``, ``push_agent``, ``push_group``)."""
        if rt is GROUP_TYPE:
            return desired_group(identity.id, identity.doc)
        if rt is AGENT_TYPE:
            body = (
                desired_agent(identity.id, identity.doc)
                if self.nhi_resource == "Agents"
                else desired_nhi_user(identity.id, identity.doc, self.target.config.nhi_user_type)
            )
            return strip(body, self.dropped)
        return strip(desired_user(identity.id, identity.doc, self.target.config.mapping, manager_remote), self.dropped)

    async def _account_page(self, resource: str, holders: list[_Holders], page: list[Resource]) -> None:
        readback, tid = self.owner.readback, self.target.id
        types = {holder.rt.name: holder.rt for holder in holders}
        by_remote = await readback.links_by_remote(tid, list(types), [account["id"] for account in page])
        claimed = {
            account["id"]: external
            for account in page
            if account["id"] not in by_remote and isinstance(external := _get(account, "externalId"), str) and external
        }
        hub = await self._hub_of(holders, by_remote, set(claimed.values()))
        ids = {link.identity_id for link in by_remote.values()} | set(claimed.values())
        claimed_links = await readback.links(tid, set(claimed.values())) if claimed else {}
        in_flight = await readback.in_flight(tid, ids)
        people = {link.identity_id for link in by_remote.values() if link.resource_type == "User"}
        managers = [m for i, identity in hub.items() if i in people and (m := manager_id(identity.doc))]
        manager_remote = await self.owner.links.linked_remote_ids(tid, managers) if managers else {}
        found: list[Observation] = []
        repairs = _Repairs()
        for account in page:
            remote_id = account["id"]
            link = by_remote.get(remote_id)
            if link is None:
                owner_id = claimed.get(remote_id)
                owner = hub.get(owner_id) if owner_id else None
                if owner_id and owner is not None and owner.in_scope and owner_id not in claimed_links:
                    self.unlinked[owner_id] = summary(account)  # a push will adopt it: reported as missing
                    continue
                reason = _orphan_reason(owner_id, owner, claimed_links.get(owner_id or ""))
                for drift in orphan_drift(resource[:-1], remote_id, account, reason, owner_id if owner else None):
                    found.append(_finding(drift, await self._deactivate_orphan(resource, drift)))
                continue
            rt = types[link.resource_type]
            self.seen[rt.name].add(link.identity_id)
            identity = hub.get(link.identity_id)
            flying = link.identity_id in in_flight
            if identity is None or not identity.in_scope:
                reason = "deleted in the hub" if identity is None else "out of the target's scope"
                because = f"{reason}; deprovisioning: {self.target.config.deprovision}"
                unwanted = functools.partial(
                    unwanted_account_drift,
                    link.identity_id,
                    remote_id,
                    link.state,
                    link.status,
                    account,
                    because,
                    resource_type=rt.name,
                )
                drifts = unwanted(in_flight=flying)
                if flying:
                    self._unverified(unwanted())
                if drifts and self.repairing:  # make propagate deprovision it again: say it is active
                    repairs.states.append((link.identity_id, {**(link.state or {}), "active": True}, "active"))
            else:
                manager = manager_id(identity.doc) if rt is USER_TYPE else None
                desired = self._desired(rt, identity, manager_remote.get(manager) if manager else None)
                drifts = account_drift(
                    rt.name, identity.id, remote_id, desired, link.state, account, self.owned, in_flight=flying
                )
                if flying:
                    self._unverified(
                        account_drift(rt.name, identity.id, remote_id, desired, link.state, account, self.owned)
                    )
                if drifts and self.repairing:
                    repairs.states.append(
                        (identity.id, acknowledge(link.state, account, [d.attribute for d in drifts]), link.status)
                    )
            if drifts and self.repairing:
                repairs.push(rt.name, link.identity_id)
            found.extend(_finding(d, _ENQUEUED if self.repairing else None) for d in drifts)
        await self._commit(found, repairs)

    async def _group_page(self, page: list[Resource]) -> None:
        readback, tid = self.owner.readback, self.target.id
        by_remote = await readback.links_by_remote(tid, "Group", [group["id"] for group in page])
        ids = {link.identity_id for link in by_remote.values()}
        hub = await readback.identities(GROUP_TYPE, ids, self.group_scope)
        in_flight = await readback.in_flight(tid, ids)
        found: list[Observation] = []
        repairs = _Repairs()
        for group in page:
            link = by_remote.get(group["id"])
            if link is None:
                continue  # a group the hub did not make is the application's own
            self.seen["Group"].add(link.identity_id)
            identity = hub.get(link.identity_id)
            flying = link.identity_id in in_flight
            if identity is None or not identity.in_scope or not self.target.config.push_groups:
                if not flying:  # propagate deletes a group the hub made and no longer pushes
                    drift = Drift(
                        Kind.ORPHANED_ACCOUNT,
                        "Group",
                        link.identity_id,
                        link.remote_id,
                        "",
                        None,
                        link.state,
                        summary(group),
                        "a group the hub made and no longer pushes",
                    )
                    found.append(_finding(drift, _ENQUEUED if self.repairing else None))
                    if self.repairing:
                        repairs.push("Group", link.identity_id)
                continue
            wanted = desired_group(identity.id, identity.doc)
            drifts = account_drift(
                "Group", identity.id, link.remote_id, wanted, link.state, group, GROUP_OWNED, in_flight=flying
            )
            if flying:
                self._unverified(
                    account_drift("Group", identity.id, link.remote_id, wanted, link.state, group, GROUP_OWNED)
                )
            if drifts and self.repairing:
                repairs.states.append(
                    (identity.id, acknowledge(link.state, group, [d.attribute for d in drifts]), link.status)
                )
            drifts += await self._membership(identity, link, group, flying)
            if drifts and self.repairing:
                repairs.push("Group", identity.id)
            found.extend(_finding(d, _ENQUEUED if self.repairing else None) for d in drifts)
        await self._commit(found, repairs)

    async def _membership(self, identity: HubIdentity, link: Link, group: Resource, flying: bool) -> list[Drift]:
        readback, tid = self.owner.readback, self.target.id
        actual = {
            m["value"] for m in _get(group, "members") or () if isinstance(m, dict) and isinstance(m.get("value"), str)
        }
        desired = await readback.desired_members(tid, identity.id)
        acknowledged = await readback.acknowledged_members(tid, identity.id)
        strangers = actual - desired.keys() - acknowledged.keys()
        linked = await readback.links_by_remote(tid, None, strangers) if strangers else {}
        members = {**{remote: found.identity_id for remote, found in linked.items()}, **acknowledged, **desired}
        drifts = membership_drift(
            identity.id, link.remote_id, desired.keys(), acknowledged.keys(), actual, members, in_flight=flying
        )
        if flying:
            self._unverified(
                membership_drift(identity.id, link.remote_id, desired.keys(), acknowledged.keys(), actual, members)
            )
        if drifts and self.repairing:
            # Record reality in the acknowledged memberships, so the group's next delta corrects it. An
            # extra member the hub does not know is acknowledged under its remote id, which the delta
            # sends back as is (``LinkStore.member_delta``).
            remote = {member_path(r): r for r in actual | desired.keys()}
            extra = [
                members.get(remote[d.attribute], remote[d.attribute]) for d in drifts if d.kind is Kind.EXTRA_MEMBERSHIP
            ]
            gone = [
                acknowledged[remote[d.attribute]]
                for d in drifts
                if d.kind is Kind.MISSING_MEMBERSHIP and remote[d.attribute] in acknowledged
            ]
            await self.owner.links.acknowledge_members(tid, identity.id, [m for m in extra if len(m) <= 36], gone)
        return drifts

    # -- identities the target did not show -----------------------------------------------------------

    async def walk_unseen(self) -> None:
        await self._unseen(USER_TYPE, self.scope, self.seen["User"])
        if self.target.config.push_nhis and self.nhi_resource is not None:
            await self._unseen(AGENT_TYPE, self.nhis.scope, self.seen["Agent"])
        if self.target.config.push_groups:
            await self._unseen(GROUP_TYPE, self.group_scope, self.seen["Group"])

    async def _in_scope_ids(self, rt: ResourceType, scope: Filter | None) -> AsyncIterator[list[str]]:
        """Ids of identities the scope takes by their source state, then those whose effective state
        differs (the scope is decided on their effective state by the caller)."""
        async for chunk in self.owner.identities.ids(rt, scope):
            yield chunk
        diverged = await self.owner.identities.diverged_ids(rt)
        if diverged:
            yield diverged

    async def _unseen(self, rt: ResourceType, scope: Filter | None, seen: set[str]) -> None:
        readback, tid = self.owner.readback, self.target.id
        async for chunk in self._in_scope_ids(rt, scope):
            self.progress("hub", len(chunk))
            candidates = [i for i in chunk if i not in seen]
            if not candidates:
                continue
            flying = await readback.in_flight(tid, candidates)
            # The effective state decides (a held change keeps an identity where it was).
            hub = {i: h for i, h in (await readback.identities(rt, candidates, scope)).items() if h.in_scope}
            # Missing, with the push that makes it on its way: not reported, and not fixed either.
            self.unverified.update((i, "") for i in hub if i in flying)
            hub = {i: h for i, h in hub.items() if i not in flying}
            links = await readback.links(tid, candidates)
            managers = [m for identity in hub.values() if (m := manager_id(identity.doc))] if rt is USER_TYPE else []
            manager_remote = await self.owner.links.linked_remote_ids(tid, managers) if managers else {}
            found = []
            for identity in hub.values():
                manager = manager_id(identity.doc) if rt is USER_TYPE else None
                desired = self._desired(rt, identity, manager_remote.get(manager) if manager else None)
                link = links.get(identity.id)
                drift = missing_account_drift(
                    rt.name, identity.id, desired, link.state if link else None, self.unlinked.get(identity.id)
                )
                found.append(_finding(drift, _ENQUEUED if self.repairing else None))
            repairs = _Repairs()
            if self.repairing:
                vanished = [identity_id for identity_id in hub if identity_id in links]
                for identity_id in vanished:  # the account is gone: forget it, so the push makes it again
                    await self.owner.links.drop(tid, identity_id)
                repairs.push(rt.name, *hub)
                if vanished and rt is not GROUP_TYPE and self.target.config.push_groups:
                    # Forgetting the account forgot its memberships: its groups must send them again.
                    repairs.push("Group", *await readback.groups_of(vanished))
            await self._commit(found, repairs)

    # -- findings not seen fixed ----------------------------------------------------------------------

    def _unverified(self, drifts: list[Drift]) -> None:
        self.unverified.update((d.subject, d.attribute) for d in drifts)

    async def keep_unverified(self) -> None:
        """Keep open the findings this run could not see fixed: the target still differs there, only a
        push on its way explains it. A run closes a finding only when its read shows the target right."""
        if not self.unverified:
            return
        findings = self.owner.findings
        kept = [
            Observation(
                kind=f.kind,
                subject=f.subject,
                severity=f.severity,
                attribute=f.attribute,
                resource_type=f.resource_type,
                identity_id=f.identity_id,
                detail=f.detail,
                data=f.actual,
                remote_id=f.remote_id,
                desired=f.desired,
                last_pushed=f.last_pushed,
            )
            for f in await findings.list(target_id=self.target.id, kinds=[kind.value for kind in Kind])
            if (f.subject, f.attribute) in self.unverified and f.last_seen < self.run.started
        ]
        await findings.record(self.target.id, self.run.started, kept)

    # -- writing --------------------------------------------------------------------------------------

    async def _commit(self, found: list[Observation], repairs: _Repairs) -> None:
        """Repairs first (record reality, then enqueue, so a worker never pushes from the old record),
        each one in the push log; then the findings."""
        tid = self.target.id
        await self.owner.readback.record_states(tid, repairs.states)
        for resource_type, ids in sorted(repairs.pushes.items(), key=lambda item: item[0] == "Group"):
            if ids:
                unique = list(dict.fromkeys(ids))
                await self.owner.outbox.enqueue_all(tid, resource_type, unique)
                self.enqueued += len(unique)
        await self.owner.readback.log_repairs(
            tid,
            self.run.started,
            [
                (
                    f.identity_id,
                    " ".join(part for part in (f"reconcile run {self.run.id}:", f.kind, f.attribute) if part)
                    + f": {f.repair}",
                )
                for f in found
                if f.repair in _ENQUEUED_NOTES and f.identity_id
            ],
        )
        await self.owner.findings.record(tid, self.run.started, found)

    async def _deactivate_orphan(self, resource: str, drift: Drift) -> str | None:
        """Have propagate switch off an account nobody in the hub owns, if the target says so; never
        delete it. The deactivation meets the target's mass-change breaker (``policy.orphans``)."""
        if not self.repairing or self.policy.orphans != "deactivate" or drift.remote_id is None:
            return None
        held = await deactivate_orphan(
            self.owner.db, self.target.id, self.target.name, resource, drift.remote_id, self.run.id
        )
        await self.owner.links.log(
            self.target.id,
            orphan_key(resource, drift.remote_id),
            "repair",
            "enqueued",
            utcnow(),
            f"reconcile run {self.run.id}: orphaned account {drift.remote_id}: "
            + ("deactivation held: the target's mass-change breaker is open" if held else "deactivation enqueued"),
        )
        self.orphans_deactivated += 1
        return _ORPHAN_HELD if held else _ORPHAN_ENQUEUED

    async def _heartbeat(self) -> None:
        if time.monotonic() - self._beat >= HEARTBEAT_SECONDS:
            self._beat = time.monotonic()
            await self.owner.runs.heartbeat(self.run.id)


_ENQUEUED = "push enqueued"
_ORPHAN_ENQUEUED = "deactivation enqueued (orphans: deactivate); propagate switches the account off"
_ORPHAN_HELD = (
    "deactivation held: the target's mass-change breaker is open; sent on `scimward breaker release`, "
    "dropped on `discard`"
)
_NOTES = {
    Kind.CHANGED_IN_APP: "recorded the target's value as last pushed; push enqueued to restore the desired one",
    Kind.ATTRIBUTE_DRIFT: "push enqueued",
    Kind.ACTIVE_SHOULD_BE_INACTIVE: "recorded the account as active; push enqueued to deactivate it",
    Kind.MISSING_ACCOUNT: "push enqueued: creates the account, or adopts one that names the identity",
    Kind.EXTRA_MEMBERSHIP: "recorded the member as acknowledged; push enqueued to remove it",
    Kind.MISSING_MEMBERSHIP: "recorded the member as not acknowledged; push enqueued to add it",
    Kind.ORPHANED_ACCOUNT: "push enqueued: propagate deletes a group the hub no longer pushes",
}
_ENQUEUED_NOTES = frozenset(_NOTES.values())


def _finding(drift: Drift, repair: str | None) -> Observation:
    if repair == _ENQUEUED:
        repair = _NOTES[drift.kind]
    return Observation(
        kind=drift.kind.value,
        subject=drift.subject,
        severity=drift.severity.value,
        attribute=drift.attribute,
        resource_type=drift.resource_type,
        identity_id=drift.identity_id,
        detail=drift.detail,
        data=drift.actual,
        remote_id=drift.remote_id,
        desired=drift.desired,
        last_pushed=drift.last_pushed,
        repair=repair,
    )


def _orphan_reason(owner_id: str | None, owner: HubIdentity | None, owner_link: Link | None) -> str:
    if owner_id is None:
        return "linked to nothing in the hub"
    if owner is None:
        return f"its externalId {owner_id} names no identity in the hub"
    if owner_link is not None:
        return f"a second account of {owner_id}, whose linked account is {owner_link.remote_id}"
    return f"its identity {owner_id} is out of the target's scope"


def _get(resource: Resource, name: str) -> Any:
    """An attribute by name, as SCIM names are: case-insensitively."""
    if name in resource:
        return resource[name]
    lowered = name.lower()
    return next((value for key, value in resource.items() if key.lower() == lowered), None)


async def _pages(items: AsyncIterator[Resource], size: int) -> AsyncIterator[list[Resource]]:
    page: list[Resource] = []
    async for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


async def _prefetch(pages: AsyncIterator[list[Resource]], depth: int = 2) -> AsyncIterator[list[Resource]]:
    """The pages, with up to ``depth`` read ahead while the caller works on the current one."""
    queue: asyncio.Queue[list[Resource] | BaseException | None] = asyncio.Queue(depth)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(None)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            await queue.put(exc)

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
