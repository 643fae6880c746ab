"""Target rows: where a target is, its encrypted credential, its configuration and its health."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.errors import NotFound
from scimward.store.database import Database
from scimward.store.governance import audit_records
from scimward.store.tables import targets
from scimward.store.timeutil import utcnow

_t = targets.c


@dataclass(frozen=True)
class TargetRow:
    id: int
    name: str
    base_url: str
    token_encrypted: str
    config: dict[str, Any]
    created: datetime
    quarantined: datetime | None
    quarantine_reason: str | None
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None


def _row(row: Any) -> TargetRow:
    return TargetRow(
        row.id,
        row.name,
        row.base_url,
        row.token_encrypted,
        row.config,
        row.created,
        row.quarantined,
        row.quarantine_reason,
        row.consecutive_failures,
        row.last_error,
        row.last_error_at,
    )


class TargetRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def add(
        self, name: str, base_url: str, token_encrypted: str, config: dict[str, Any], *, actor: str = "admin"
    ) -> TargetRow:
        async with self.db.write() as conn:
            await conn.execute(
                targets.insert().values(
                    name=name, base_url=base_url, token_encrypted=token_encrypted, config=config, created=utcnow()
                )
            )
            await audit_records.config(
                f"target:{name}", actor, {"action": "add", "base_url": base_url, "config": sorted(config)}
            ).append(conn)
        return await self.by_name(name)

    async def update(self, name: str, *, actor: str = "admin", **values: Any) -> TargetRow:
        """Change base_url, token_encrypted or config; the audit event names what changed, never a secret."""
        async with self.db.write() as conn:
            old = (await conn.execute(sa.select(_t.base_url, _t.config).where(_t.name == name))).first()
            result = await conn.execute(targets.update().where(_t.name == name).values(**values))
            if result.rowcount != 1 or old is None:
                raise NotFound(f"no target named {name!r}")
            changed: dict[str, Any] = {"action": "update", "credential": "token_encrypted" in values}
            if "base_url" in values and values["base_url"] != old.base_url:
                changed["base_url"] = values["base_url"]
            if "config" in values:
                before, after = old.config or {}, values["config"] or {}
                changed["config"] = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            await audit_records.config(f"target:{name}", actor, changed).append(conn)
        return await self.by_name(name)

    async def by_name(self, name: str) -> TargetRow:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(targets).where(_t.name == name))).first()
        if row is None:
            raise NotFound(f"no target named {name!r}")
        return _row(row)

    async def by_id(self, target_id: int) -> TargetRow:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(targets).where(_t.id == target_id))).first()
        if row is None:
            raise NotFound(f"no target with id {target_id}")
        return _row(row)

    async def by_ids(self, target_ids: Collection[int]) -> dict[int, TargetRow]:
        """The targets of these ids that exist: a worker resolves a claimed batch's targets at once."""
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(targets).where(_t.id.in_(list(target_ids))))
            return {row.id: _row(row) for row in rows}

    async def all(self) -> list[TargetRow]:
        async with self.db.read() as conn:
            return [_row(row) for row in await conn.execute(sa.select(targets).order_by(_t.name))]

    async def remove(self, name: str, *, actor: str = "admin") -> None:
        """Forget a target, with its outbox, links and log (ON DELETE CASCADE). Its accounts stay."""
        async with self.db.write() as conn:
            result = await conn.execute(targets.delete().where(_t.name == name))
            if result.rowcount != 1:
                raise NotFound(f"no target named {name!r}")
            await audit_records.config(f"target:{name}", actor, {"action": "remove"}).append(conn)

    async def record_failure(self, target_id: int, error: str) -> int:
        """Count a failure; returns the number of failures in a row."""
        async with self.db.write() as conn:
            await conn.execute(
                targets.update()
                .where(_t.id == target_id)
                .values(
                    consecutive_failures=_t.consecutive_failures + 1, last_error=error[:2000], last_error_at=utcnow()
                )
            )
            return int((await conn.execute(sa.select(_t.consecutive_failures).where(_t.id == target_id))).scalar_one())

    async def record_error(self, target_id: int, error: str) -> None:
        """Remember the target's latest error without counting it toward quarantine (a 4xx on one identity)."""
        async with self.db.write() as conn:
            await conn.execute(
                targets.update().where(_t.id == target_id).values(last_error=error[:2000], last_error_at=utcnow())
            )

    async def quarantine(self, target_id: int, reason: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                targets.update()
                .where(_t.id == target_id, _t.quarantined.is_(None))
                .values(quarantined=utcnow(), quarantine_reason=reason[:2000])
            )

    async def resume(self, name: str) -> TargetRow:
        async with self.db.write() as conn:
            result = await conn.execute(
                targets.update()
                .where(_t.name == name)
                .values(quarantined=None, quarantine_reason=None, consecutive_failures=0)
            )
            if result.rowcount != 1:
                raise NotFound(f"no target named {name!r}")
        return await self.by_name(name)


async def record_outcomes(conn: AsyncConnection, errors: Mapping[int, str], succeeded: Collection[int]) -> None:
    """A batch's effect on its targets' health, inside the caller's transaction: each target's latest
    error (a 4xx on one identity: recorded, not counted toward quarantine), and a reset of the
    failures-in-a-row count of every target that acknowledged a push."""
    now = utcnow()
    for target_id, error in errors.items():
        await conn.execute(
            targets.update().where(_t.id == target_id).values(last_error=error[:2000], last_error_at=now)
        )
    for target_id in succeeded:
        await conn.execute(
            targets.update().where(_t.id == target_id, _t.consecutive_failures != 0).values(consecutive_failures=0)
        )


async def merge_capabilities(conn: AsyncConnection, target_id: int, capabilities: dict[str, Any]) -> None:
    """Keep what propagate learned of a target in its configuration's ``capabilities``, read and
    written in the caller's transaction, so an admin's change of another setting meanwhile is kept."""
    config = (await conn.execute(sa.select(_t.config).where(_t.id == target_id))).scalar()
    if config is None:
        return
    await conn.execute(
        targets.update()
        .where(_t.id == target_id)
        .values(config={**config, "capabilities": {**(config.get("capabilities") or {}), **capabilities}})
    )
