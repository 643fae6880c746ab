"""Propagate: push every identity's desired state to every target, level-triggered.

A worker claims outbox rows, and for each (target, identity) computes the desired state *now*,
compares it with what the target last acknowledged (the link) and sends only the difference:
create (after looking for an account to adopt), PATCH of changed attributes, membership as add
and remove deltas, deactivate or delete. Because it reads the present state rather than replaying
events, any number of changes coalesce into one push, and a crash or a retry is harmless.

Failures decide what happens next (``sync.errors``): transient ones retry with backoff and pause the
target; a target that keeps failing, or refuses our credential, is quarantined (it stops receiving
until ``target resume``, and what it missed stays in the outbox); a 4xx is recorded on the link and
the target and not retried until the identity changes again.

Work goes by claimed batch, because per-row bookkeeping cost more than the push: a batch's targets
are read once, what its pushes need (identities, scope, links, managers' links) is fetched in a few
queries per target, the pushes run concurrently, and their outcomes (links, push log, outbox
completions) are written in one transaction per phase (``store.provisioning.push_results``). Until that commit
the rows stay claimed, so a crash loses nothing: they are pushed again and adoption finds the
accounts already made.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import structlog

from scimward.scim.ast import Filter
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import AGENT_TYPE, AGENTIC_APPLICATION_TYPE, GROUP_TYPE, USER_TYPE
from scimward.scim.schema import ResourceType
from scimward.store.database import Database
from scimward.store.failures import log_round_failure
from scimward.store.governance import PUSH_KINDS, FindingStore, Observation
from scimward.store.provisioning import (
    ORPHAN,
    BatchReads,
    HubIdentity,
    Link,
    LinkStore,
    Outbox,
    OutboxItem,
    PushResults,
    TargetRepository,
    TargetRow,
    commit,
    log_row,
    orphan_remote_id,
)
from scimward.store.timeutil import utcnow
from scimward.sync import metrics
from scimward.sync.client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Resource, TargetClient, backoff, eq_filter
from scimward.sync.diff import (
    is_deprovisioning,
    member_add,
    member_remove,
    member_remove_values,
    patch_operations,
    sub_attribute_paths,
)
from scimward.sync.drift import flat_path, flatten
from scimward.sync.errors import (
    AlreadyExistsError,
    BadRequestError,
    HaltError,
    NotFoundError,
    TargetError,
    TransientError,
)
from scimward.sync.mapping import desired_group, desired_user, manager_id
from scimward.sync.nhi_mapping import desired_agent, desired_nhi_user, nhi_resource
from scimward.sync.probe import evaluates
from scimward.sync.profile import COMPLEX, Capabilities, drops, strip
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import DeprovisionMode, Target

log = structlog.get_logger("scimward.sync.propagate")

#: Connections per HTTP client. httpx's pool checks every connection it holds (a syscall for each
#: idle one) several times per request, so a pool's cost grows with its size: a push cost 1.8 ms of
#: CPU with 16 connections in one pool, 1.0 ms with 4. Pushes in flight are spread over
#: ``concurrency / LANE_CONNECTIONS`` clients instead.
LANE_CONNECTIONS = 4
#: Failures in a row of one identity's change (the same request answered the same way) after which
#: its row is parked as poison with a finding; a target may set ``poison_after``.
POISON_AFTER = 5
POISONED = PUSH_KINDS[0]
#: Seconds a target's rows wait when its settings cannot be used (a scope that cannot be evaluated).
BROKEN_RETRY = 30.0
#: Seconds between looks at an orphan deactivation that an open breaker holds (release makes it due at once).
BREAKER_WAIT = 30.0
#: Seconds a successful health probe vouches for the target: failures meanwhile are the identity's own.
HEALTHY_FOR = 2.0
#: Seconds a read of every account (adoption on a target whose filters cannot be trusted) is reused.
SCAN_TTL = 60.0
INLINE_MEMBERS = 200  # unlinked members a group push creates itself before deferring
MEMBER_CHUNK = 1000
REMOVE_CHUNK = 100


@dataclass
class _Endpoint:
    """A target in service and the HTTP clients its pushes go through, kept across batches (their
    connections stay open) until the target's URL, token or configuration changes."""

    target: Target
    #: Several small connection pools rather than one large one (see ``LANE_CONNECTIONS``).
    clients: list[TargetClient]
    fingerprint: tuple[Any, ...]
    #: Quarantined during the current batch: its remaining rows are not pushed.
    halted: bool = False
    #: What ``scan`` read: resource -> {(attribute, lower-cased value): remote id}.
    scanned: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    #: When each resource was read (time.monotonic()); ``sync``'s own scan never expires.
    scanned_at: dict[str, float] = field(default_factory=dict)
    #: The target's capability profile, updated as soon as a push learns something.
    caps: Capabilities = field(default_factory=Capabilities)
    #: Attribute paths (lower-cased, as ``drift.flatten`` names them) the target was seen to store:
    #: a PATCH it answers without a body (204) is read back only while it touches others.
    stored: set[str] = field(default_factory=set)
    #: When a health probe last succeeded (time.monotonic()).
    healthy_at: float = -1e9
    #: Whether the target serves /Agents (None: not asked yet).
    agents: bool | None = None
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _free: asyncio.Queue[TargetClient] = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        self.caps = Capabilities.from_config(self.target.config.extra)
        for _ in range(LANE_CONNECTIONS):
            for client in self.clients:
                self._free.put_nowait(client)

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[_Lane]:
        """A client for one push, held until the push is done; there is a place for every push the
        worker lets run at once, so this never waits."""
        client = await self._free.get()
        try:
            yield _Lane(self, client)
        finally:
            self._free.put_nowait(client)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


@dataclass(frozen=True)
class _Lane:
    """One push in flight: the endpoint it goes to and the client it holds meanwhile."""

    endpoint: _Endpoint
    client: TargetClient

    @property
    def target(self) -> Target:
        return self.endpoint.target


@dataclass(frozen=True)
class _Known:
    """What the pushes of one batch to one target read, fetched for the whole batch in a few queries
    (``Propagator._prefetch``) instead of a few per row."""

    #: The identities that exist, with their effective state and whether the target's scope holds.
    identities: dict[str, HubIdentity]
    #: Links on the target of those identities and of the managers they name.
    links: dict[str, Link]

    def manager_remote(self, manager: str) -> str | None:
        link = self.links.get(manager)
        return link.remote_id if link is not None and link.status == "active" else None


@dataclass(frozen=True)
class Deferred:
    """A push's outcome that is not an action: put the row back for ``delay`` seconds (a tombstone's
    grace, members not yet linked, a group to make again)."""

    delay: float
    reason: str


#: What pushing one identity did: the action taken ("create", "update", "none", ...), or not now.
Outcome = str | Deferred


def _natural(resource: str) -> str:
    """The attribute that names an account of ``resource`` uniquely (adoption looks it up)."""
    return {"Users": "userName", "Agents": "name"}.get(resource, "displayName")


@functools.lru_cache(maxsize=64)
def _scope(text: str | None) -> Filter | None:
    return parse_filter(text) if text else None


class Propagator:
    def __init__(
        self,
        database: Database,
        *,
        batch: int = 64,
        concurrency: int = 16,
        lease: timedelta = timedelta(seconds=120),
        poll_seconds: float = 0.5,
        secrets: SecretBox | None = None,
        client_timeout: float | None = None,
    ) -> None:
        self.db = database
        self.reads = BatchReads(database)
        self.outbox = Outbox(database)
        self.links = LinkStore(database)
        self.targets = TargetRepository(database)
        self.secrets = secrets or SecretBox()
        self.batch = batch
        self.concurrency = concurrency
        self.lease = lease
        self.poll_seconds = poll_seconds
        #: Seconds a request to a target may take (connect, read, write, pool); None: the client's default.
        self.client_timeout = client_timeout
        self._wake = asyncio.Event()
        self._targets_checked = -1e9
        self._has_targets = False
        self._endpoints: dict[int, _Endpoint] = {}
        self._paused_until: dict[int, float] = {}
        #: Targets of the current round whose settings or data could not be used, with why: their rows
        #: wait (``BROKEN_RETRY``) and the error is recorded against them alone.
        self._broken: dict[int, str] = {}
        self.findings = FindingStore(database)
        #: Target id -> capabilities learned since the last commit.
        self._learned: dict[int, dict[str, Any]] = {}

    async def _any_target(self) -> bool:
        """Whether any target is in service; checked at most once a second, so a hub with no targets
        (or only quarantined ones) spends no write on claiming after every commit."""
        now = time.monotonic()
        if now - self._targets_checked > 1.0:
            self._targets_checked = now
            self._has_targets = any(row.quarantined is None for row in await self.targets.all())
        return self._has_targets

    def wake(self) -> None:
        """A change committed in this process: look at the outbox now, not at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        for endpoint in self._endpoints.values():
            await endpoint.aclose()
        self._endpoints.clear()

    # -- loops ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; errors of one round are logged, never fatal.

        A round claims what is due. Only a full batch goes straight on to the next round; otherwise the
        loop waits for a wake or the poll. The wake is cleared before the claim, never after it, so a
        change committed while a round runs starts the next round at once instead of being lost until
        the poll; rows due later (retries) and changes made by other processes are found by the poll.
        """
        while not stop.is_set():
            self._wake.clear()
            try:
                done = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the worker loop: logged, and the next round goes on
                log_round_failure(log, "propagate round failed", exc)
                done = 0
            if done >= self.batch:
                continue
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def drain(
        self, target_id: int | None = None, progress: Callable[[int], None] | None = None, deadline: float | None = None
    ) -> int:
        """Process due rows until none is left (``scimward sync``, tests); the number processed."""
        # Whether any target is in service is asked afresh: the answer ``run`` keeps for a second may
        # predate a ``target resume``, and a drain that right after it found nothing to do would lie.
        self._targets_checked = -1e9
        total = 0
        while deadline is None or time.monotonic() < deadline:
            done = await self.run_once(target_id)
            if done == 0:
                break
            total += done
            if progress is not None:
                progress(done)
        return total

    async def run_once(self, target_id: int | None = None) -> int:
        """Claim a batch of due rows and push them; the number of rows claimed.

        The batch's targets are resolved once, what its pushes read is fetched once per target, the
        pushes run concurrently, and what they did is written in one transaction per phase.
        """
        if target_id is None and not await self._any_target():
            return 0
        items = await self.outbox.claim(self.batch, self.lease, target_id)
        if not items:
            return 0
        self._broken = {}
        endpoints = await self._endpoints_for({item.target_id for item in items})
        # Users first, and committed before the groups go: a group's members are pushed as deltas
        # computed from the links, so the users it names must be linked on the target by then.
        await self._run_phase(USER_TYPE, [i for i in items if i.resource_type == "User"], endpoints)
        # Non-human identities next (as Agents, or as Users where a target has no /Agents), then groups.
        await self._run_phase(AGENT_TYPE, [i for i in items if i.resource_type == "Agent"], endpoints)
        await self._run_phase(
            AGENTIC_APPLICATION_TYPE, [i for i in items if i.resource_type == "AgenticApplication"], endpoints
        )
        await self._run_phase(GROUP_TYPE, [i for i in items if i.resource_type == "Group"], endpoints)
        await self._run_orphans([i for i in items if i.resource_type == ORPHAN], endpoints)
        return len(items)

    async def _run_orphans(self, items: list[OutboxItem], endpoints: dict[int, _Endpoint | None]) -> None:
        """Deactivate the orphaned accounts reconcile found (policy.orphans), but not while a target's
        mass-change breaker is open: those wait for ``breaker release`` (or go with ``discard``)."""
        if not items:
            return
        held = await self.outbox.open_breakers({item.target_id for item in items})
        results = PushResults()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: OutboxItem) -> None:
            if item.target_id in held:
                await self.outbox.postpone(item, BREAKER_WAIT)
                return
            async with gate:
                await self.process(item, endpoints.get(item.target_id), _Known({}, {}), results)

        outcomes = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
        await commit(self.db, results)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _run_phase(
        self, rt: ResourceType, items: list[OutboxItem], endpoints: dict[int, _Endpoint | None]
    ) -> None:
        """Push rows of one resource type concurrently, then commit their outcomes together. The
        commit happens even if a row failed unexpectedly, so the others' work is kept; that row stays
        claimed until its lease runs out, as it would have if the worker had died."""
        if not items:
            return
        known = await self._prefetch_batch(rt, items, endpoints)
        results = PushResults()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: OutboxItem) -> None:
            async with gate:
                await self.process(item, endpoints.get(item.target_id), known.get(item.target_id), results)

        outcomes = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
        if rt is USER_TYPE:
            self._requeue_for_managers(items, known, results)
        results.capabilities, self._learned = self._learned, {}
        await commit(self.db, results)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _prefetch_batch(
        self, rt: ResourceType, items: list[OutboxItem], endpoints: dict[int, _Endpoint | None]
    ) -> dict[int, _Known]:
        by_target: dict[int, list[str]] = {}
        for item in items:
            by_target.setdefault(item.target_id, []).append(item.identity_id)
        known: dict[int, _Known] = {}
        for target_id, ids in by_target.items():
            endpoint = endpoints.get(target_id)
            if endpoint is not None and target_id not in self._broken:
                try:
                    known[target_id] = await self._prefetch(rt, endpoint.target, ids)
                except Exception as exc:  # noqa: BLE001 - the worker loop: one target's failure, nobody else's
                    await self._break(endpoint.target.id, endpoint.target.name, exc)
        return known

    async def _break(self, target_id: int, name: str, exc: Exception) -> None:
        """Record that a target's settings or data cannot be used now; its rows wait, the others flow."""
        reason = f"cannot push to this target: {type(exc).__name__}: {exc}"
        self._broken[target_id] = reason
        log.error("target skipped", target=name, reason=reason)
        await self.targets.record_error(target_id, reason)

    async def _prefetch(self, rt: ResourceType, target: Target, ids: Collection[str]) -> _Known:
        """Two queries for any number of identities: the identities (with the scope evaluated in SQL)
        and their links, with the links of the managers the users name."""
        scope = _scope(
            {
                USER_TYPE.name: target.config.scope,
                GROUP_TYPE.name: target.config.group_scope,
                AGENT_TYPE.name: target.config.nhi_scope,
            }.get(rt.name)
        )
        identities = await self.reads.identities(rt, ids, scope)
        wanted = set(ids)
        if rt is USER_TYPE:
            wanted.update(m for hub in identities.values() if hub.in_scope and (m := manager_id(hub.doc)))
        return _Known(identities, await self.reads.links(target.id, wanted))

    @staticmethod
    def _requeue_for_managers(items: list[OutboxItem], known: dict[int, _Known], results: PushResults) -> None:
        """A user pushed without its manager because the manager had no account yet, while the same
        batch gave the manager one: push the user again (next claim), so the reference is not lost."""
        for item in items:
            hub = known[item.target_id].identities.get(item.identity_id) if item.target_id in known else None
            manager = manager_id(hub.doc) if hub is not None and hub.in_scope else None
            if (
                manager
                and known[item.target_id].manager_remote(manager) is None
                and results.linked(item.target_id, manager)
            ):
                results.requeue(item)

    # -- one row --------------------------------------------------------------------------------

    async def process(
        self, item: OutboxItem, endpoint: _Endpoint | None, known: _Known | None, results: PushResults
    ) -> None:
        """Push one row and record the outcome in ``results``. Failures that change what happens to
        the target (a pause, a quarantine) and retries are written at once; they are rare."""
        if item.target_id in self._broken:
            await self.outbox.retry(item, BROKEN_RETRY, self._broken[item.target_id])
            return
        if endpoint is None or endpoint.halted or known is None:
            # Quarantined since the claim (or removed): leave the row to the resume.
            await self.outbox.postpone(item, 0.0)
            return
        target = endpoint.target
        # Checked for every row, not once per batch: rows claimed together with one that failed
        # must not go out while the target asked us to wait (Retry-After) or is backing off.
        paused = self._paused_until.get(target.id, 0.0) - time.monotonic()
        if paused > 0:
            await self.outbox.postpone(item, paused)
            return
        started = time.monotonic()
        try:
            async with endpoint.lane() as lane:
                action = await self._push(lane, item, known, results)
        except TransientError as error:
            if _target_wide(error) or not await self._healthy(endpoint):
                await self._transient(item, endpoint, error)
            else:
                await self._identity_failure(item, endpoint, error, results)
            return
        except HaltError as error:
            status = f" {error.status}" if error.status is not None else ""
            metrics.FAILURES.labels(target.name, "halt").inc()
            await self._quarantine(endpoint, f"{type(error).__name__}{status}: {error.detail}")
            return
        except TargetError as error:  # 4xx and protocol errors: recorded, not retried blindly
            detail = f"{type(error).__name__} {error.status or ''}: {error.detail}".strip()
            results.rejected(item, detail)
            metrics.FAILURES.labels(target.name, "rejected").inc()
            return
        except Exception as exc:  # a crash in this row's mapping or data: this row's failure alone
            log.exception("push failed", target=target.name, identity=item.identity_id)
            metrics.FAILURES.labels(target.name, "crash").inc()
            await self.outbox.retry(item, backoff(item.attempts + 1), f"internal error: {type(exc).__name__}: {exc}")
            return
        if isinstance(action, Deferred):
            await self.outbox.retry(item, action.delay, action.reason)
            return
        finished = utcnow()
        results.succeeded(item, action, finished)

        if action != "none":
            metrics.PUSHES.labels(target.name, action).inc()
            metrics.LATENCY.labels(target.name).observe((finished - item.enqueued).total_seconds())
        metrics.PUSH_SECONDS.labels(target.name).observe(time.monotonic() - started)

    async def _push(self, lane: _Lane, item: OutboxItem, known: _Known, results: PushResults) -> Outcome:
        if item.resource_type == "User":
            return await self.push_user(lane, item.identity_id, known, results)
        if item.resource_type == "Agent":
            return await self.push_agent(lane, item.identity_id, known, results)
        if item.resource_type == "Group":
            return await self.push_group(lane, item.identity_id, known, results)
        if item.resource_type == ORPHAN:
            return await self.deactivate_orphan(lane, item.identity_id)
        return "none"  # AgenticApplications stay in the hub: no target receives them

    async def _healthy(self, endpoint: _Endpoint) -> bool:
        """Whether the target serves a plain read now: if it does, a 5xx was this request's own (a
        change it cannot take), not an outage, and must not pause every other identity."""
        if time.monotonic() - endpoint.healthy_at < HEALTHY_FOR:
            return True
        try:
            async with endpoint.lane() as lane:
                await lane.client.first_page("Users", 1, ["id"])
        except TargetError:
            return False
        endpoint.healthy_at = time.monotonic()
        return True

    async def _identity_failure(
        self, item: OutboxItem, endpoint: _Endpoint, error: TargetError, results: PushResults
    ) -> None:
        """One identity's change fails while the target is well: back off this row alone, and after
        ``poison_after`` failures in a row park it with a finding naming the request and the answer."""
        target = endpoint.target
        metrics.FAILURES.labels(target.name, "identity").inc()
        attempts = item.attempts + 1
        answer = f"{error.status or ''} {error.detail}".strip()
        limit = int(target.config.extra.get("poison_after", POISON_AFTER))
        if attempts < limit:
            await self.outbox.retry(item, backoff(attempts), answer)
            return
        detail = f"parked after {attempts} failures: {error.request or 'request'} answered {answer}"
        results.rejected(item, detail)
        await self.findings.record(
            target.id,
            utcnow(),
            [
                Observation(
                    kind=POISONED,
                    subject=item.identity_id,
                    severity="high",
                    resource_type=item.resource_type,
                    identity_id=item.identity_id,
                    detail=detail,
                )
            ],
        )
        log.warning("push parked", target=target.name, identity=item.identity_id, detail=detail)

    async def _transient(self, item: OutboxItem, endpoint: _Endpoint, error: TransientError) -> None:
        """Retry the row later and pause the whole target: its backoff grows with the target's failures
        in a row (a row's own failures can only lengthen its own wait), Retry-After is its floor."""
        target = endpoint.target
        metrics.FAILURES.labels(target.name, "transient").inc()
        text = f"{error.status or ''} {error.detail}".strip()
        own = backoff(item.attempts + 1, retry_after=error.retry_after)
        now = time.monotonic()
        paused_until = self._paused_until.get(target.id, 0.0)
        if paused_until > now:
            # A push in flight alongside one that already failed and paused the target: the same
            # outage, so it does not count again toward quarantine (or a one-second blip meeting
            # ``concurrency`` pushes would count as that many failures in a row).
            if error.retry_after is not None:
                paused_until = self._paused_until[target.id] = max(paused_until, now + error.retry_after)
            await self.outbox.retry(item, max(own, paused_until - now), text)
            return
        # Paused before anything awaits, so that pushes failing meanwhile see the pause.
        pause = backoff(target.row.consecutive_failures + 1, retry_after=error.retry_after)
        self._paused_until[target.id] = now + pause
        await self.outbox.retry(item, max(own, pause), text)
        failures = await self.targets.record_failure(target.id, f"{error.status or 'transport'}: {error.detail}")
        if failures >= target.config.quarantine_after:
            await self._quarantine(endpoint, f"{failures} failures in a row; last: {text}")

    async def _quarantine(self, endpoint: _Endpoint, reason: str) -> None:
        """Stop the target until ``target resume``; what it misses waits in the outbox, due at once.
        The rest of the batch sees ``halted`` and sends nothing more to it."""
        target = endpoint.target
        endpoint.halted = True
        await self.targets.quarantine(target.id, reason)
        await self.outbox.release_target(target.id, due_now=True)
        self._paused_until.pop(target.id, None)  # a resume starts afresh
        log.warning("target quarantined", target=target.name, reason=reason)

    async def _endpoints_for(self, target_ids: Collection[int]) -> dict[int, _Endpoint | None]:
        """The targets of a batch, read once: None for one quarantined or removed since the claim."""
        rows = await self.targets.by_ids(target_ids)
        endpoints: dict[int, _Endpoint | None] = {}
        for target_id in target_ids:
            if target_id not in rows:
                endpoints[target_id] = None
                continue
            try:
                endpoints[target_id] = await self._endpoint(rows[target_id])
            except Exception as exc:  # noqa: BLE001 - the worker loop: a target's unusable settings or key
                endpoints[target_id] = None
                await self._break(target_id, rows[target_id].name, exc)
        return endpoints

    async def _endpoint(self, row: TargetRow) -> _Endpoint | None:
        if row.quarantined is not None:
            return None
        # What the pushes learn of the target (its capabilities) changes its configuration without
        # making its clients or scans stale.
        fingerprint = (
            row.base_url,
            row.token_encrypted,
            repr({k: v for k, v in row.config.items() if k != "capabilities"}),
        )
        endpoint = self._endpoints.get(row.id)
        if endpoint is None or endpoint.fingerprint != fingerprint:
            target = Target.from_row(row)
            target.config.validate()
            if endpoint is not None:
                await endpoint.aclose()
                del self._endpoints[row.id]
            clients = self._clients(row, -(-self.concurrency // LANE_CONNECTIONS))
            endpoint = _Endpoint(target, clients, fingerprint)
            self._endpoints[row.id] = endpoint
        else:
            endpoint.target = Target.from_row(row)
            endpoint.caps = Capabilities.from_config(endpoint.target.config.extra)
            endpoint.halted = False
        return endpoint

    async def _learn(self, endpoint: _Endpoint, caps: Capabilities) -> None:
        """Keep what a push learned of the target: at once for this worker's pushes, and, with the
        batch's outcomes, in the target's configuration for every worker and for ``target show``."""
        if caps == endpoint.caps:
            return
        endpoint.caps = caps
        self._learned[endpoint.target.id] = caps.to_json()
        log.info("target capability learned", target=endpoint.target.name, capabilities=caps.to_json())

    def _clients(self, row: TargetRow, count: int) -> list[TargetClient]:
        """``count`` clients of ``LANE_CONNECTIONS`` connections each, sharing one TLS context: making
        one (reading the CA bundle) costs about 30 ms, more than many pushes."""
        token = self.secrets.decrypt(row.token_encrypted)
        timeout = DEFAULT_TIMEOUT if self.client_timeout is None else httpx.Timeout(self.client_timeout)
        limits = httpx.Limits(
            max_connections=LANE_CONNECTIONS,
            max_keepalive_connections=LANE_CONNECTIONS,
            keepalive_expiry=DEFAULT_LIMITS.keepalive_expiry,
        )
        tls = httpx.create_ssl_context()
        return [
            TargetClient(
                row.base_url, token, timeout=timeout, transport=httpx.AsyncHTTPTransport(verify=tls, limits=limits)
            )
            for _ in range(count)
        ]

    # -- users ----------------------------------------------------------------------------------

    async def push_user(self, lane: _Lane, identity_id: str, known: _Known, results: PushResults) -> Outcome:
        target = lane.target
        hub = known.identities.get(identity_id)
        link = known.links.get(identity_id)
        if hub is None or not hub.in_scope:
            return await self._deprovision_user(lane, link, results) if link is not None else "none"
        manager = manager_id(hub.doc)
        manager_remote = known.manager_remote(manager) if manager else None
        dropped = lane.endpoint.caps.dropped
        desired = strip(desired_user(identity_id, hub.doc, target.config.mapping, manager_remote), dropped)
        return await self._push_account(lane, "User", "Users", identity_id, link, desired, results)

    async def push_agent(self, lane: _Lane, identity_id: str, known: _Known, results: PushResults) -> Outcome:
        """A non-human identity: as an Agent where the target serves /Agents, else as a User with the
        target's ``nhi_user_type``; only to targets that take NHIs (``push_nhis``), within ``nhi_scope``."""
        target = lane.target
        hub = known.identities.get(identity_id)
        link = known.links.get(identity_id)
        resource = await self._agent_resource(lane)
        if hub is None or not hub.in_scope or not target.config.push_nhis:
            return await self._deprovision_user(lane, link, results, resource) if link is not None else "none"
        body = (
            desired_agent(identity_id, hub.doc)
            if resource == "Agents"
            else desired_nhi_user(identity_id, hub.doc, target.config.nhi_user_type)
        )
        desired = strip(body, lane.endpoint.caps.dropped)
        return await self._push_account(lane, "Agent", resource, identity_id, link, desired, results)

    async def _agent_resource(self, lane: _Lane) -> str:
        """ "Agents" when the target announces the Agent resource type, else "Users" (asked once per endpoint)."""
        endpoint = lane.endpoint
        if endpoint.agents is None:
            endpoint.agents = await nhi_resource(lane.client) == "Agents"
        return "Agents" if endpoint.agents else "Users"

    async def _push_account(
        self,
        lane: _Lane,
        rt_name: str,
        resource: str,
        identity_id: str,
        link: Link | None,
        desired: dict[str, Any],
        results: PushResults,
    ) -> Outcome:
        """Create the account, or bring it to ``desired`` with PATCH (deprovisioning first and alone)."""
        target, client = lane.target, lane.client
        dropped = lane.endpoint.caps.dropped
        if link is None:
            return await self._create(lane, rt_name, identity_id, desired, results, resource)
        acknowledged = None if link.state is None else strip(link.state, dropped)
        operations = patch_operations(acknowledged, desired)
        if not operations and link.status == "active":
            return "none"
        operations = operations or [{"op": "replace", "path": "active", "value": desired.get("active", True)}]
        # Deprovisioning first and alone: no other attribute the target refuses can hold it back.
        first = [operation for operation in operations if is_deprovisioning(operation)]
        rest = [operation for operation in operations if not is_deprovisioning(operation)]
        held: Resource | None = None
        try:
            if first:
                await client.patch(resource, link.remote_id, first)
                acknowledged = {**(acknowledged or {}), "active": False}
                results.save_link(target.id, identity_id, rt_name, link.remote_id, acknowledged)
            if rest:
                held = await self._update(lane, resource, link.remote_id, rest, desired, acknowledged)
        except NotFoundError:  # the account vanished on the target: make it again
            await self.links.drop(target.id, identity_id)
            results.links.pop((target.id, identity_id), None)
            return await self._create(lane, rt_name, identity_id, desired, results, resource)
        state = await self._held(lane.endpoint, desired, held)
        results.save_link(target.id, identity_id, rt_name, link.remote_id, state)
        if link.status != "active":  # back in scope: its groups take it back
            results.account_changed(target.id, identity_id)
        return "deactivate" if first and not rest else "update"

    @staticmethod
    async def deactivate_orphan(lane: _Lane, key: str) -> Outcome:
        """Switch off an account no identity in the hub holds (``orphans: deactivate``); never delete it."""
        resource, remote_id = orphan_remote_id(key)
        try:
            await lane.client.patch(resource, remote_id, [{"op": "replace", "path": "active", "value": False}])
        except NotFoundError:
            return "none"  # gone already: nothing left to switch off
        return "deactivate"

    async def _deprovision_user(
        self, lane: _Lane, link: Link, results: PushResults, resource: str = "Users"
    ) -> Outcome:
        target, client = lane.target, lane.client
        mode = target.config.deprovision
        if mode is DeprovisionMode.DELETE or (
            mode is DeprovisionMode.TOMBSTONE
            and link.status == "deactivated"
            and utcnow() - link.acknowledged >= timedelta(days=target.config.tombstone_days)
        ):
            with contextlib.suppress(NotFoundError):  # already gone: the goal is reached
                await client.delete(resource, link.remote_id)
            await self.links.drop(target.id, link.identity_id)
            results.account_changed(target.id, link.identity_id)
            return "delete"
        if link.status != "deactivated":
            try:
                await client.patch(resource, link.remote_id, [{"op": "replace", "path": "active", "value": False}])
            except NotFoundError:
                await self.links.drop(target.id, link.identity_id)
                results.account_changed(target.id, link.identity_id)
                return "delete"
            state = {**(link.state or {}), "active": False}
            results.save_link(target.id, link.identity_id, link.resource_type, link.remote_id, state, "deactivated")
            results.account_changed(target.id, link.identity_id)
            action = "deactivate"
        else:
            action = "none"
        if mode is DeprovisionMode.TOMBSTONE:
            # The grace runs from the deactivation, however often the row is looked at meanwhile.
            since = utcnow() if action == "deactivate" else link.acknowledged
            left = timedelta(days=target.config.tombstone_days) - (utcnow() - since)
            return Deferred(max(left.total_seconds(), 0.0), "tombstone: delete after the grace period")
        return action

    # -- the wire form --------------------------------------------------------------------------

    async def _update(
        self,
        lane: _Lane,
        resource: str,
        remote_id: str,
        operations: list[dict[str, Any]],
        desired: dict[str, Any],
        acknowledged: dict[str, Any] | None,
    ) -> Resource | None:
        """Change an account by the form the target takes: PATCH as the profile says, else the
        standard PATCH, then sub-attribute paths, then PUT of the account as read with the change
        applied. What worked is learned, so the next push goes straight to it. The first refusal is
        raised when no form works (the change itself is refused)."""
        endpoint = lane.endpoint
        caps = endpoint.caps
        paths = {str(operation.get("path", "")).lower() for operation in operations}
        if (caps.external_id_patch is False and "externalid" in paths) or (
            resource == "Groups" and caps.group_rename == "put" and "displayname" in paths
        ):
            return await self._put(lane, resource, remote_id, desired, acknowledged)
        expanded = sub_attribute_paths(operations, COMPLEX)
        forms = [expanded] if caps.complex_paths else [operations]
        if caps.complex_paths is None and expanded != operations:
            forms.append(expanded)
        refusal: TargetError | None = None
        for number, form in enumerate(forms):
            try:
                held = await lane.client.patch(resource, remote_id, form)
            except (BadRequestError, TransientError) as error:
                if not _form_refused(error):
                    raise
                refusal = refusal or error
                continue
            if number > 0:
                await self._learn(endpoint, endpoint.caps.learned(complex_paths=True))
            if held is None and _unverified(form, endpoint):
                # No answer to read what it kept (204): read the account, until every attribute sent has
                # been seen stored or found dropped, so a dropped one is not taken as acknowledged.
                with contextlib.suppress(TargetError):
                    held = await lane.client.get(resource, remote_id)
            return held
        try:
            held = await self._put(lane, resource, remote_id, desired, acknowledged)
        except (BadRequestError, TransientError) as error:
            if not _form_refused(error) or refusal is None:
                raise
            raise refusal from error
        if "externalid" in paths and caps.external_id_patch is None:
            await self._learn(endpoint, endpoint.caps.learned(external_id_patch=False))
        if resource == "Groups" and "displayname" in paths and caps.group_rename is None:
            await self._learn(endpoint, endpoint.caps.learned(group_rename="put"))
        return held

    async def _put(
        self, lane: _Lane, resource: str, remote_id: str, desired: dict[str, Any], acknowledged: dict[str, Any] | None
    ) -> Resource:
        """PUT the account as the target holds it with the desired attributes set and the ones no
        longer desired removed: what the application keeps of its own (a group's members) stays."""
        current = await lane.client.get(resource, remote_id)
        return await lane.client.replace(resource, remote_id, put_body(current, desired, acknowledged))

    async def _held(self, endpoint: _Endpoint, sent: dict[str, Any], answer: Resource | None) -> dict[str, Any]:
        """What the target acknowledged: what was sent, less what its answer shows it did not store.
        Those attributes join the profile's ``dropped``: not sent again, not drift."""
        if answer is None:
            return sent
        endpoint.stored.update(flatten(answer))
        missing = drops(sent, answer)
        if not missing:
            return sent
        await self._learn(endpoint, endpoint.caps.with_drops(missing))
        return strip(sent, missing)

    # -- create or adopt ------------------------------------------------------------------------

    async def _create(
        self,
        lane: _Lane,
        rt_name: str,
        identity_id: str,
        desired: dict[str, Any],
        results: PushResults,
        resource: str | None = None,
    ) -> str:
        """Create the account, unless one is already there to adopt (found by externalId, then by
        userName or displayName): nothing is ever duplicated. The link goes to ``results``."""
        resource = resource or ("Users" if rt_name == "User" else "Groups")
        client = lane.client
        existing = await self._find_existing(lane, resource, identity_id, desired)
        if existing is None:
            try:
                created = await client.create(resource, desired)
            except AlreadyExistsError:  # made by someone else since we looked (or case differs)
                existing = await self._find_existing(lane, resource, identity_id, desired)
                if existing is None:
                    raise
            else:
                self._remember(lane.endpoint, resource, created)
                state = await self._held(lane.endpoint, desired, created)
                results.save_link(lane.target.id, identity_id, rt_name, str(created["id"]), state)
                self._account_made(lane, rt_name, identity_id, results)
                return "create"
        held = await self._update(lane, resource, str(existing["id"]), patch_operations(None, desired), desired, None)
        state = await self._held(lane.endpoint, desired, held)
        results.save_link(lane.target.id, identity_id, rt_name, str(existing["id"]), state)
        self._account_made(lane, rt_name, identity_id, results)
        return "adopt"

    @staticmethod
    def _account_made(lane: _Lane, rt_name: str, identity_id: str, results: PushResults) -> None:
        """A user that gets an account (new in scope, say) joins the target's copies of its groups:
        they are pushed again. Cheap during a full sync: the groups wait behind the users anyway."""
        if rt_name == "User":
            results.account_changed(lane.target.id, identity_id)

    async def _find_existing(
        self, lane: _Lane, resource: str, identity_id: str, desired: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The account to adopt, by a filter the target is known (or found) to evaluate, else from a
        read of every account: an empty answer to a filter the target ignores is not "no such account"."""
        natural = _natural(resource)
        endpoint = lane.endpoint
        for attribute, value in (("externalId", identity_id), (natural, desired.get(natural))):
            if not value:
                continue
            lookup = f"{resource}.{attribute}"
            fresh = resource in endpoint.scanned and (
                time.monotonic() - endpoint.scanned_at.get(resource, -1e9) < SCAN_TTL
            )
            works = endpoint.caps.filters.get(lookup)
            if works is None and not fresh:
                works = await self._probe_filter(lane, resource, attribute)
            if fresh or works is False:
                index = await self._index(lane, resource)
                match = index.get((attribute, str(value).lower()))
                if match is not None:
                    return {"id": match}
                continue
            found = await lane.client.find(resource, eq_filter(attribute, value))
            if found:
                return found[0]
        return None

    async def _probe_filter(self, lane: _Lane, resource: str, attribute: str) -> bool | None:
        """Whether the target evaluates ``attribute eq`` on ``resource``: search for an account it holds
        and see that it comes back. None when it holds none to search for (then nothing can match)."""
        endpoint = lane.endpoint
        lookup = f"{resource}.{attribute}"
        async with endpoint.probe_lock:
            if lookup in endpoint.caps.filters:
                return endpoint.caps.filters[lookup]
            works = await evaluates(lane.client, resource, attribute)
            if works is None:
                return None
            await self._learn(endpoint, endpoint.caps.with_filter(lookup, works))
            return works

    async def _index(self, lane: _Lane, resource: str) -> dict[tuple[str, str], str]:
        """Every account of a type by externalId and by its natural key, read at most every ``SCAN_TTL``."""
        endpoint = lane.endpoint
        async with endpoint.probe_lock:
            if resource not in endpoint.scanned or (
                time.monotonic() - endpoint.scanned_at.get(resource, -1e9) >= SCAN_TTL
            ):
                await self._read_index(endpoint, lane.client, resource)
            return endpoint.scanned[resource]

    @staticmethod
    async def _read_index(endpoint: _Endpoint, client: TargetClient, resource: str, *, forever: bool = False) -> int:
        natural = _natural(resource)
        index: dict[tuple[str, str], str] = {}
        seen = 0
        async for account in client.iterate(resource, attributes=["externalId", natural]):
            for attribute in ("externalId", natural):
                value = account.get(attribute)
                if isinstance(value, str):
                    index.setdefault((attribute, value.lower()), str(account["id"]))
            seen += 1
        endpoint.scanned[resource] = index
        endpoint.scanned_at[resource] = float("inf") if forever else time.monotonic()
        return seen

    @staticmethod
    def _remember(endpoint: _Endpoint, resource: str, created: Resource) -> None:
        """An account this worker made joins the index it adopts from, so it is never made twice."""
        index = endpoint.scanned.get(resource)
        if index is None:
            return
        natural = _natural(resource)
        for attribute in ("externalId", natural):
            value = created.get(attribute)
            if isinstance(value, str):
                index.setdefault((attribute, value.lower()), str(created["id"]))

    async def scan(self, target_id: int) -> int:
        """Read the target's accounts once, so creating many accounts (a ``sync`` into a new app) costs
        one request each instead of three: adoption lookups are answered from what was read. An account
        made on the target after the scan is still found, by the 409 its create gets."""
        endpoint = (await self._endpoints_for([target_id]))[target_id]
        if endpoint is None:
            return 0
        seen = 0
        for resource in ("Users", "Groups"):
            seen += await self._read_index(endpoint, endpoint.clients[0], resource, forever=True)
        return seen

    # -- groups ---------------------------------------------------------------------------------

    async def push_group(self, lane: _Lane, identity_id: str, known: _Known, results: PushResults) -> Outcome:
        target, client = lane.target, lane.client
        hub = known.identities.get(identity_id)
        link = known.links.get(identity_id)
        if hub is None or not target.config.push_groups or not hub.in_scope:
            if link is None:
                return "none"
            with contextlib.suppress(NotFoundError):
                await client.delete("Groups", link.remote_id)
            await self.links.drop(target.id, identity_id)
            return "delete"
        desired = desired_group(identity_id, hub.doc)
        action = "none"
        if link is None:
            action = await self._create(lane, "Group", identity_id, desired, results)
            remote_id = results.links[(target.id, identity_id)]["remote_id"]
        else:
            remote_id = link.remote_id
            operations = patch_operations(link.state, desired)
            if operations:
                try:
                    held = await self._update(lane, "Groups", remote_id, operations, desired, link.state)
                except NotFoundError:
                    await self.links.drop(target.id, identity_id)
                    return Deferred(0.0, "the group vanished on the target; it will be made again")
                results.save_link(
                    target.id, identity_id, "Group", remote_id, await self._held(lane.endpoint, desired, held)
                )
                action = "update"
        waiting = await self._push_unlinked_members(lane, identity_id)
        if waiting is not None:
            return waiting
        if await self._push_member_deltas(lane, identity_id, remote_id) and action == "none":
            action = "members"
        return action

    async def _push_unlinked_members(self, lane: _Lane, group_id: str) -> Deferred | None:
        """Members are pushed after the users (and NHIs) they name exist on the target: make those
        first, and commit their links before the membership deltas are computed from them. A member the
        target refuses is recorded against that member and left out; the group takes the others. An
        Agent member goes only where the target takes NHIs (``push_agent``); elsewhere it has no
        account, and so no membership, on the target."""
        unlinked = await self.links.unlinked_members(lane.target.id, group_id, INLINE_MEMBERS + 1)
        if not unlinked:
            return None
        first = unlinked[:INLINE_MEMBERS]
        if not lane.target.config.push_nhis:
            first = [(member, kind) for member, kind in first if kind == "User"]
        kinds = {member: kind for member, kind in first}
        known = {
            rt.name: await self._prefetch(rt, lane.target, ids)
            for rt in (USER_TYPE, AGENT_TYPE)
            if (ids := [member for member, kind in first if kind == rt.name])
        }
        made = [
            member
            for member, kind in first
            if member in known[kind].identities and known[kind].identities[member].in_scope
        ]
        results = PushResults()
        try:
            for member in made:
                push = self.push_user if kinds[member] == "User" else self.push_agent
                try:
                    outcome = await push(lane, member, known[kinds[member]], results)
                except TargetError as error:
                    if isinstance(error, HaltError) or (isinstance(error, TransientError) and _target_wide(error)):
                        raise
                    results.log.append(
                        log_row(
                            lane.target.id,
                            member,
                            "user",
                            "failed",
                            utcnow(),
                            utcnow(),
                            f"as a member of {group_id}: {error}",
                        )
                    )
                    continue
                if isinstance(outcome, Deferred):  # a member not to be made now: nor is the group
                    return outcome
        finally:
            await commit(self.db, results)
        if len(unlinked) > INLINE_MEMBERS and len(made) == INLINE_MEMBERS:
            return Deferred(1.0, "waiting for member accounts to be created")
        return None

    async def _push_member_deltas(self, lane: _Lane, group_id: str, remote_group: str) -> bool:
        """Removals first, in requests of their own (an entitlement taken away must not wait for one
        granted), then additions."""
        target, client = lane.target, lane.client
        changed = False
        while True:
            adds, removes = await self.links.member_delta(target.id, group_id, MEMBER_CHUNK)
            if not adds and not removes:
                return changed
            for i in range(0, len(removes), REMOVE_CHUNK):
                chunk = removes[i : i + REMOVE_CHUNK]
                await self._remove_members(lane, remote_group, [remote for _, remote in chunk])
                await self.links.acknowledge_members(target.id, group_id, [], [m for m, _ in chunk])
            if adds:
                await client.patch("Groups", remote_group, [member_add([remote for _, remote in adds])])
                await self.links.acknowledge_members(target.id, group_id, [m for m, _ in adds], [])
            changed = True

    async def _remove_members(self, lane: _Lane, remote_group: str, remote_ids: list[str]) -> None:
        """A removal by filter path (RFC 7644 3.5.2.2), or by value list where the target refuses that."""
        endpoint = lane.endpoint
        # The profile as it was when this removal chose its form: another group's push may learn the
        # fallback meanwhile, and this refusal is then still the filter form's, not the fallback's.
        form = endpoint.caps.member_remove
        if form == "value_list":
            await lane.client.patch("Groups", remote_group, [member_remove_values(remote_ids)])
            return
        try:
            await lane.client.patch("Groups", remote_group, [member_remove(remote_ids)])
        except (BadRequestError, TransientError) as error:
            if not _form_refused(error) or form is not None:
                raise
            await lane.client.patch("Groups", remote_group, [member_remove_values(remote_ids)])
            await self._learn(endpoint, endpoint.caps.learned(member_remove="value_list"))


#: What every account holds or a PATCH changes by other means than an attribute it could drop.
_ALWAYS_KEPT = frozenset({"active", "members", "schemas"})


def _unverified(operations: list[dict[str, Any]], endpoint: _Endpoint) -> set[str]:
    """The attribute paths ``operations`` set that the target was neither seen to store nor found to drop."""
    touched: set[str] = set()
    for operation in operations:
        if str(operation.get("op", "")).lower() == "remove":
            continue
        path = str(operation.get("path") or "").split("[", 1)[0]
        if path:
            touched.add(flat_path(path).lower())
        elif isinstance(operation.get("value"), dict):
            touched.update(flatten(operation["value"]))
    dropped = {flat_path(path).lower() for path in endpoint.caps.dropped}
    return touched - endpoint.stored - dropped - _ALWAYS_KEPT


def _target_wide(error: TransientError) -> bool:
    """A failure that says the target as a whole cannot serve now: no answer at all (refused, reset,
    timed out), a rate limit, or a Retry-After. Other 5xx may be one request's own."""
    return error.status is None or error.status == 429 or error.retry_after is not None


def _form_refused(error: TargetError) -> bool:
    """Whether another wire form of the same change may succeed: the target refused this request
    (4xx, 501, or a 5xx answered to it alone), not the credential, the rate or the connection."""
    if isinstance(error, TransientError):
        return not _target_wide(error)
    return isinstance(error, BadRequestError)


def put_body(current: Resource, desired: dict[str, Any], acknowledged: dict[str, Any] | None) -> dict[str, Any]:
    """A full resource for PUT: ``current`` (as read) with ``desired`` set on it and what was pushed
    before but is no longer desired taken off. Extension attributes are merged one by one."""
    body = {key: value for key, value in current.items() if key != "meta"}
    for key, value in desired.items():
        if key == "schemas":
            body["schemas"] = list(dict.fromkeys([*(current.get("schemas") or []), *value]))
        elif key.lower().startswith("urn:") and isinstance(value, dict):
            body[key] = {**(current.get(key) or {}), **value}
        else:
            body[key] = value
    for key, value in (acknowledged or {}).items():
        if key.lower().startswith("urn:") and isinstance(value, dict):
            for sub in set(value) - set(desired.get(key) or {}):
                (body.get(key) or {}).pop(sub, None)
        elif key not in desired:
            body.pop(key, None)
    return body
