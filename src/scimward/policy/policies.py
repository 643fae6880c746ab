"""The policy in force: applied from a file, every version kept, previewed before it applies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from scimward.policy.cel import context
from scimward.policy.document import Policy, parse_policy, policy_from_json
from scimward.policy.gate import variables
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import Change, audit_records
from scimward.store.tables import effective_states, identities, policies
from scimward.store.timeutil import utcnow


@dataclass
class Preview:
    """What applying a policy changes, and which existing identities its rules would deny or hold."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    #: (rule, action, resource type, id, userName or displayName), for existing identities.
    affected: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    checked: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.settings)


async def current(database: Database) -> Policy:
    async with database.read() as conn:
        row = (
            await conn.execute(
                sa.select(policies.c.version, policies.c.document).order_by(policies.c.version.desc()).limit(1)
            )
        ).first()
    return policy_from_json(row.document, row.version) if row is not None else Policy()


async def apply(
    database: Database,
    text: str,
    applied_by: str,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Preview:
    """Validate ``text`` (a ``PolicyError`` names what is wrong; nothing changes), compare it with the
    policy in force and, unless ``dry_run``, make it the policy in force."""
    new = parse_policy(text)
    old = await current(database)
    preview = _compare(old, new)
    if dry_run:
        await _affected(database, new, preview, progress)
        return preview
    if not preview.empty:
        async with database.write() as conn:
            version = (
                await conn.execute(
                    policies.insert()
                    .values(document=new.to_json(), text=text, applied=utcnow(), applied_by=applied_by)
                    .returning(policies.c.version)
                )
            ).scalar_one()
            await audit_records.config(
                "policy",
                applied_by,
                {
                    "action": "apply",
                    "version": int(version),
                    "added": preview.added,
                    "removed": preview.removed,
                    "changed": preview.changed,
                    "settings": preview.settings,
                },
            ).append(conn)
    return preview


def _compare(old: Policy, new: Policy) -> Preview:
    before = {rule.name: rule.to_json() for rule in old.rules}
    after = {rule.name: rule.to_json() for rule in new.rules}
    preview = Preview(
        added=[n for n in after if n not in before],
        removed=[n for n in before if n not in after],
        changed=[n for n in after if n in before and before[n] != after[n]],
    )
    old_json, new_json = old.to_json(), new.to_json()
    for key in sorted((set(old_json) | set(new_json)) - {"rules"}):  # every section beside the rules
        if old_json.get(key) != new_json.get(key):
            preview.settings.append(f"{key}: {old_json.get(key)} -> {new_json.get(key)}")
    return preview


async def _affected(
    database: Database, policy: Policy, preview: Preview, progress: Callable[[int], None] | None
) -> None:
    """Each existing identity's effective state, as if its source stated it anew (a create), against
    the new rules: those a deny or hold rule would catch."""
    rules = [rule for rule in policy.rules if rule.action in ("deny", "hold")]
    if not rules:
        return
    async for batch in _effective_identities(database):
        for rt_name, identity_id, doc, source in batch:
            change = Change("preview", rt_name, identity_id, "create", None, doc, sorted(doc), source, source, utcnow())
            ctx = context({"change": variables(change, None, None, policy.attributes, policy.fields)})
            for rule in rules:
                if rule.when.holds(ctx):
                    label = doc.get("userName") or doc.get("displayName") or identity_id
                    preview.affected.append((rule.name, rule.action, rt_name, identity_id, str(label)))
                    break
        preview.checked += len(batch)
        if progress is not None:
            progress(len(batch))


async def _effective_identities(
    database: Database, chunk: int = 1000
) -> AsyncIterator[list[tuple[str, str, dict[str, Any], str | None]]]:
    t, e = identities.c, effective_states.c
    last = ""
    while True:
        query = (
            sa.select(t.id, t.resource_type, t.doc, t.source, e.identity_id.label("overlaid"), e.doc.label("eff"))
            .select_from(identities.outerjoin(effective_states, e.identity_id == t.id))
            .where(t.id > last, t.resource_type.in_([USER_TYPE.name, GROUP_TYPE.name]))
            .order_by(t.id)
            .limit(chunk)
        )
        async with database.read() as conn:
            rows = list(await conn.execute(query))
        if not rows:
            return
        yield [
            (r.resource_type, r.id, (r.eff if r.overlaid is not None else r.doc), r.source)
            for r in rows
            if r.overlaid is None or r.eff is not None
        ]
        last = rows[-1].id
