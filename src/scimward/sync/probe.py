"""Probing a target: what its SCIM server really does, found out by reading, never by writing.

ServiceProviderConfig says what a server claims. ``target test`` (and propagate, the first time an
adoption needs a lookup) asks instead: for each lookup adoption makes (``profile.LOOKUPS``) it takes
an account the target holds, searches for it by that attribute and sees whether it comes back. A
target that answers an empty list to a filter it cannot evaluate is then known not to evaluate it,
and adoption reads every account instead of trusting the filter. Nothing is created or changed:
what a target does with a PATCH form, or which attributes it drops, is learned from the answers to
real pushes (``sync.propagate``), because finding it out beforehand would mean writing to the
application. Every reconcile probes again (``refresh``), so a target that changes is known again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scimward.store.database import Database
from scimward.store.provisioning import PushResults, commit
from scimward.store.timeutil import utcnow
from scimward.sync.client import TargetClient, eq_filter
from scimward.sync.profile import LOOKUPS, Capabilities

#: Accounts read to find one that carries the attribute searched by.
SAMPLE = 20


async def evaluates(client: TargetClient, resource: str, attribute: str) -> bool | None:
    """Whether the target evaluates ``attribute eq`` on ``resource``: search for an account it holds by
    that attribute and see that it comes back. None when no account carries the attribute (then
    nothing can be learned, and no lookup can match either)."""
    sample = next(
        (
            item
            for item in await client.first_page(resource, SAMPLE, [attribute])
            if isinstance(item.get(attribute), str) and item[attribute]
        ),
        None,
    )
    if sample is None:
        return None
    found = await client.find(resource, eq_filter(attribute, sample[attribute]))
    return any(item.get("id") == sample["id"] for item in found)


async def probe_filters(client: TargetClient) -> dict[str, bool | None]:
    """Each adoption lookup (``Users.externalId`` ...) -> whether the target evaluates it (None: unknown)."""
    out: dict[str, bool | None] = {}
    for lookup in LOOKUPS:
        resource, _, attribute = lookup.partition(".")
        out[lookup] = await evaluates(client, resource, attribute)
    return out


async def refresh(
    database: Database,
    target_id: int,
    config: Mapping[str, Any],
    client: TargetClient,
    filters: Mapping[str, bool | None] | None = None,
) -> Capabilities:
    """Probe the target (or take ``filters`` just probed), keep what was found in its capability
    profile with the time of the probe, and answer the profile as it now stands."""
    found = await probe_filters(client) if filters is None else filters
    current = Capabilities.from_config(config)
    for lookup, works in found.items():
        if works is not None:
            current = current.with_filter(lookup, works)
    current = current.learned(probed=utcnow().isoformat(timespec="milliseconds") + "Z")
    results = PushResults()
    results.capabilities[target_id] = {"filters": dict(current.filters), "probed": current.probed}
    await commit(database, results)
    return current
