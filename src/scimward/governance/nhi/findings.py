"""The NHI findings of a round, through the catalogue's ``observe`` (opened, kept and resolved as the
state changes): OWASP NHI1 (no owner, owners gone, reassignment pending), NHI5 (privileged group),
NHI7 (no expiry, beyond the maximum lifetime, rotation overdue), NHI8 (accounts in targets of
different environments), NHI9 (accounts in more applications than its purpose allows), and stale
access: an AgenticApplication not accessed within ``nhi.stale_after`` (its ``lastAccessed``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scimward.governance.catalogue import observation
from scimward.governance.nhi.model import expires_of, extension, kind_of, name_of, owners_of
from scimward.policy.nhi_settings import NhiSettings
from scimward.store.database import Database
from scimward.store.governance import Observation, nhi_rows, observe
from scimward.store.governance.nhi_rows import EffectiveIdentity
from scimward.store.ids import created_ms
from scimward.store.timeutil import parse_time

KINDS = (
    "nhi_no_owner",
    "nhi_owner_gone",
    "nhi_reassignment_pending",
    "nhi_no_expiry",
    "nhi_beyond_max_lifetime",
    "nhi_rotation_overdue",
    "nhi_privileged",
    "nhi_environments_mixed",
    "nhi_too_many_applications",
    "nhi_attestation_due",
    "nhi_review_overdue",
    "nhi_application_stale",
)
GOVERNANCE_GROUP = "urn:scimward:params:scim:schemas:extension:governance:2.0:Group"


async def observe_nhis(
    database: Database,
    settings: NhiSettings,
    nhis: list[EffectiveIdentity],
    alive: set[str],
    people: dict[str, EffectiveIdentity],
    reassigning: dict[str, str],
    now: datetime,
    attestation_due: set[str] | None = None,
) -> int:
    """Open, keep or resolve the NHI findings; the number opened."""
    linked = await nhi_rows.linked_targets(database)
    memberships = await nhi_rows.groups_of(database, [n.id for n in nhis if n.active])
    groups = await nhi_rows.effective_by_id(database, {g for ids in memberships.values() for g in ids})
    found: list[Observation] = []
    for nhi in nhis:
        if nhi.active:
            found += _observed(
                settings,
                nhi,
                alive,
                people,
                reassigning,
                linked.get(nhi.id, []),
                [groups[g] for g in memberships.get(nhi.id, []) if g in groups],
                now,
            )
            if nhi.id in (attestation_due or ()):
                found.append(
                    observation(
                        "nhi_attestation_due",
                        name_of(nhi.resource_type, nhi.doc),
                        identity_id=nhi.id,
                        resource_type=nhi.resource_type,
                        detail="its owners changed, or an owner moved: scimward nhi attest "
                        f"{name_of(nhi.resource_type, nhi.doc)}",
                    )
                )
    found += _stale(settings, await nhi_rows.effective_of_types(database, ("AgenticApplication",)), now)
    async with database.write() as conn:
        observed = await observe(conn, KINDS, found, now=now)
    return observed.opened


def _stale(settings: NhiSettings, applications: list[EffectiveIdentity], now: datetime) -> list[Observation]:
    """Active AgenticApplications whose ``lastAccessed`` is older than ``nhi.stale_after``."""
    out = []
    for application in applications:
        last = parse_time(application.doc.get("lastAccessed"))
        if application.active and last is not None and now - last > settings.stale_after:
            name = str(application.doc.get("name") or application.id)
            out.append(
                observation(
                    "nhi_application_stale",
                    name,
                    identity_id=application.id,
                    resource_type="AgenticApplication",
                    detail=f"agentic application {name} last accessed {last:%Y-%m-%d}, more than "
                    f"{settings.stale_after.days} days ago",
                )
            )
    return out


def _rotations_overdue(
    settings: NhiSettings, nhi: EffectiveIdentity, name: str, owner_name: str | None, now: datetime
) -> list[Observation]:
    """A credential of the NHI last rotated (or made) longer ago than the policy's rotation period."""
    out: list[Observation] = []
    for credential in extension(nhi.doc).get("credentials") or ():
        if not isinstance(credential, dict):
            continue
        rotated = parse_time(credential.get("lastRotated")) or parse_time(credential.get("created"))
        if rotated is not None and now - rotated > settings.rotation:
            ident = str(credential.get("identifier") or credential.get("fingerprint") or "")
            out.append(
                observation(
                    "nhi_rotation_overdue",
                    name,
                    attribute=ident,
                    identity_id=nhi.id,
                    resource_type=nhi.resource_type,
                    owner=owner_name,
                    detail=f"credential {ident} of {name} last rotated {rotated:%Y-%m-%d}, "
                    f"more than {settings.rotation.days} days ago",
                )
            )
    return out


def _observed(
    settings: NhiSettings,
    nhi: EffectiveIdentity,
    alive: set[str],
    people: dict[str, EffectiveIdentity],
    reassigning: dict[str, str],
    targets: list[tuple[int, str, dict[str, object]]],
    groups: list[EffectiveIdentity],
    now: datetime,
) -> list[Observation]:
    name = name_of(nhi.resource_type, nhi.doc)
    kind = kind_of(nhi.resource_type, nhi.doc)

    def seen(finding: str, detail: str, **data: object) -> Observation:
        return observation(
            finding,
            name,
            identity_id=nhi.id,
            resource_type=nhi.resource_type,
            detail=detail,
            owner=owner_name,
            data={"kind": kind, **data},
        )

    owners = owners_of(nhi.resource_type, nhi.doc)
    living = [o for o in owners if o.id in alive]
    owner_name = next((name_of(people[o.id].resource_type, people[o.id].doc) for o in living if o.id in people), None)
    out: list[Observation] = []
    if not owners:
        out.append(seen("nhi_no_owner", f"{kind} {name} has no owner"))
    elif not living:
        left = [name_of(people[o.id].resource_type, people[o.id].doc) if o.id in people else o.id for o in owners]
        out.append(
            seen(
                "nhi_owner_gone",
                f"every owner of {kind} {name} is gone ({', '.join(left)}); "
                f"policy: {settings.owner_leaves} after {settings.grace}",
                owners=left,
            )
        )
        manager = reassigning.get(nhi.id)
        if manager is not None:
            manager_name = name_of("User", people[manager].doc) if manager in people else manager
            out.append(
                observation(
                    "nhi_reassignment_pending",
                    name,
                    identity_id=nhi.id,
                    resource_type=nhi.resource_type,
                    owner=manager_name,
                    detail=f"{manager_name} is asked to take over {name}: "
                    f"scimward nhi transfer {name} --to {manager_name}",
                )
            )
    expires = expires_of(nhi.doc)
    limit = settings.max_lifetime.get(kind)
    if expires is None:
        out.append(seen("nhi_no_expiry", f"{kind} {name} never expires"))
    elif limit is not None and expires > now + limit:
        out.append(
            seen(
                "nhi_beyond_max_lifetime",
                f"{kind} {name} expires {expires:%Y-%m-%d}, beyond the {limit.days}-day maximum lifetime of a {kind}",
                expires=expires.isoformat(),
            )
        )
    out.extend(_rotations_overdue(settings, nhi, name, owner_name, now))
    privileged = [g for g in groups if (g.doc.get(GOVERNANCE_GROUP) or {}).get("privileged") is True]
    if privileged:
        names = sorted(str(g.doc.get("displayName")) for g in privileged)
        out.append(
            seen("nhi_privileged", f"{kind} {name} is a member of privileged groups: {', '.join(names)}", groups=names)
        )
    environments = sorted({str(config.get("environment")) for _, _, config in targets if config.get("environment")})
    if len(environments) > 1:
        out.append(
            seen(
                "nhi_environments_mixed",
                f"{kind} {name} has accounts in {', '.join(environments)}",
                environments=environments,
                targets=sorted(t for _, t, _ in targets),
            )
        )
    cadence = _days(extension(nhi.doc).get("reviewCadence"))
    if cadence is not None:
        reviewed = parse_time(extension(nhi.doc).get("lastReviewed"))
        since = reviewed or datetime.fromtimestamp(created_ms(nhi.id) / 1000, UTC).replace(tzinfo=None)
        if now - since > cadence:
            out.append(
                seen(
                    "nhi_review_overdue",
                    f"{kind} {name} is due for review every {cadence.days} days; "
                    + (f"last reviewed {since:%Y-%m-%d}" if reviewed else "never reviewed since it was made"),
                )
            )
    allowed = extension(nhi.doc).get("maxApplications")
    if isinstance(allowed, int) and len(targets) > allowed:
        out.append(
            seen(
                "nhi_too_many_applications",
                f"{kind} {name} has accounts in {len(targets)} applications; its purpose allows {allowed}",
                targets=sorted(t for _, t, _ in targets),
            )
        )
    return out


def _days(text: object) -> timedelta | None:
    """A review cadence: ``90d`` or a number of days."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return timedelta(days=text)
    if isinstance(text, str) and text.strip().rstrip("dD").isdigit() and int(text.strip().rstrip("dD")) > 0:
        return timedelta(days=int(text.strip().rstrip("dD")))
    return None
