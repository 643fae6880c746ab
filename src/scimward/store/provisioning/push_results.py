"""What a batch of pushes did, written in one transaction.

A propagate worker claims a batch of outbox rows and pushes them concurrently. Writing each push's
bookkeeping as it finishes (the link, the outbox row, the push-log row: three transactions, each
taking SQLite's write lock) cost more than the push itself, so the worker records the outcomes here
and ``commit`` writes them together: links saved, errors recorded, push-log rows, outbox rows
completed or handed back, and the targets' health.

Nothing is lost by waiting: until the commit the rows stay claimed in the outbox. If the worker dies
first, the rows are claimed again when their lease runs out and pushed again; accounts made on the
target meanwhile are found and adopted (by externalId), so nothing is duplicated. Completing a row
keeps its generation check (``outbox.complete_claimed``): a change that arrived during the push
survives the commit and is pushed next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scimward.store.database import Database
from scimward.store.governance import audit_records
from scimward.store.governance import findings as finding_rows
from scimward.store.provisioning import links as link_rows
from scimward.store.provisioning import outbox as outbox_rows
from scimward.store.provisioning import targets as target_rows
from scimward.store.provisioning.outbox import OutboxItem
from scimward.store.timeutil import utcnow


@dataclass
class PushResults:
    """Outcomes recorded by concurrent pushes, in memory until ``commit``."""

    #: (target id, identity id) -> the link row to save; a later save of the same link replaces it.
    links: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    #: (target id, identity id, the target's error text) for links that a target refused to change.
    link_errors: list[tuple[int, str, str]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    #: (target id, identity id) -> the row pushed: removed at commit unless a newer change arrived.
    completed: dict[tuple[int, str], OutboxItem] = field(default_factory=dict)
    #: Rows pushed but to be pushed again at once (see ``requeue``).
    requeued: list[OutboxItem] = field(default_factory=list)
    #: The latest error of each target (4xx on one identity: not counted toward quarantine).
    target_errors: dict[int, str] = field(default_factory=dict)
    #: Targets that acknowledged at least one push: their failures-in-a-row count starts again.
    target_successes: set[int] = field(default_factory=set)
    #: (target id, user id) whose account was deactivated, deleted or reactivated: the user's hub
    #: groups are pushed to that target again, so their members there follow (a group's members on a
    #: target are its members with an active account there).
    membership_changes: set[tuple[int, str]] = field(default_factory=set)
    #: (target id, identity id) pushed successfully: a push of theirs parked as poison is resolved.
    pushed: list[tuple[int, str]] = field(default_factory=list)
    #: Target id -> capabilities learned during the batch, kept in the target's configuration.
    capabilities: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.links
            or self.link_errors
            or self.log
            or self.completed
            or self.requeued
            or self.target_errors
            or self.membership_changes
            or self.capabilities
        )

    def account_changed(self, target_id: int, identity_id: str) -> None:
        """The identity's account on the target became active or stopped being so."""
        self.membership_changes.add((target_id, identity_id))

    def save_link(
        self,
        target_id: int,
        identity_id: str,
        resource_type: str,
        remote_id: str,
        state: dict[str, Any] | None,
        status: str = "active",
    ) -> None:
        """The target acknowledged this state of the identity's account ``remote_id``."""
        self.links[(target_id, identity_id)] = link_rows.link_row(
            target_id, identity_id, resource_type, remote_id, state, status
        )

    def linked(self, target_id: int, identity_id: str) -> bool:
        """Whether this batch gave the identity an active account on the target."""
        row = self.links.get((target_id, identity_id))
        return row is not None and row["status"] == "active"

    def succeeded(self, item: OutboxItem, action: str, finished: datetime | None = None) -> None:
        """The row's push is done (``action`` "none": nothing needed sending, so nothing is logged)."""
        self.completed[(item.target_id, item.identity_id)] = item
        self.target_successes.add(item.target_id)
        self.pushed.append((item.target_id, item.identity_id))
        if action != "none":
            self.log.append(
                link_rows.log_row(item.target_id, item.identity_id, action, "ok", item.enqueued, finished or utcnow())
            )

    def rejected(self, item: OutboxItem, detail: str) -> None:
        """The target refused the push (4xx): recorded on the link, the target and the push log, and
        not retried until the identity changes again."""
        self.completed[(item.target_id, item.identity_id)] = item
        self.link_errors.append((item.target_id, item.identity_id, detail))
        self.target_errors[item.target_id] = f"{item.identity_id}: {detail}"
        self.log.append(
            link_rows.log_row(
                item.target_id, item.identity_id, item.resource_type.lower(), "failed", item.enqueued, utcnow(), detail
            )
        )

    def requeue(self, item: OutboxItem) -> None:
        """Push this completed row again at the next claim instead of removing it (what it referred
        to came into existence during the batch)."""
        if self.completed.pop((item.target_id, item.identity_id), None) is not None:
            self.requeued.append(item)


async def commit(database: Database, results: PushResults) -> None:
    """Write everything ``results`` holds in one transaction. Links are saved before errors are put
    on them, and outbox rows are completed in the same transaction as the links they produced, so a
    row is never gone while its link is missing."""
    if not results:
        return
    async with database.write() as conn:
        await link_rows.save_links(conn, database.dialect, list(results.links.values()))
        await link_rows.record_link_errors(conn, results.link_errors)
        await link_rows.write_log(conn, results.log)
        await outbox_rows.complete_claimed(conn, list(results.completed.values()))
        await outbox_rows.release_claimed(conn, results.requeued)
        await target_rows.record_outcomes(conn, results.target_errors, results.target_successes)
        await outbox_rows.enqueue_groups_of_members(conn, database.dialect, sorted(results.membership_changes))
        await finding_rows.resolve_pushed(conn, results.pushed)
        for target_id, capabilities in results.capabilities.items():
            await target_rows.merge_capabilities(conn, target_id, capabilities)
        if results.log:
            await audit_records.pushes(results.log).append(conn)
