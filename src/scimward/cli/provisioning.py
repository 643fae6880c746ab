"""``scimward worker``, ``scimward sync NAME`` and ``scimward target status NAME``.

``sync`` exits 0 when everything in scope was pushed, by it or by a worker running beside it
(``serve``'s, ``scimward worker``), 1 when rows are left over (waiting to retry), and as
``cli.exits`` says when it cannot run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, table_console
from scimward.cli.exits import ExitCode
from scimward.cli.logs import configure_logging
from scimward.scim.errors import ScimError
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.settings import Settings
from scimward.store.database import Database
from scimward.store.identity import IdentityStore
from scimward.store.provisioning import Outbox, TargetRepository
from scimward.sync import status
from scimward.sync.errors import TargetError
from scimward.sync.propagate import Propagator
from scimward.sync.targets import Target

err = Console(stderr=True, soft_wrap=True)  # a message is one line, whatever the width: it may be copied

#: Rows a ``sync`` claims at a time, and pushes in flight. Measured on 10,000 users (docs/benchmarks.md,
#: Propagation): 100 rows a batch cost 15 % more CPU per push than 200, 500 no less.
SYNC_BATCH = 200
SYNC_CONCURRENCY = 16
#: Seconds between looks at rows another worker holds while ``sync`` waits for them.
SYNC_WAIT_POLL = 0.2


def run_worker(url: str, concurrency: int, log_level: str, lease_seconds: float = 120.0) -> None:
    """Push outbox rows until SIGTERM or SIGINT; several workers may run against one PostgreSQL."""
    # The schedules beside the propagator, imported here: `sync` and `target status` need none of them.
    from scimward.governance.nhi import run_nhi_schedule
    from scimward.governance.nhi import user_types as nhi_user_types
    from scimward.governance.schedule import run_governance_schedule
    from scimward.policy import identity_store
    from scimward.sync.schedule import run_reconcile_schedule

    configure_logging(log_level)

    async def main() -> None:
        database = Database(url)
        propagator = Propagator(database, concurrency=concurrency, lease=timedelta(seconds=lease_seconds))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        shown = make_url(url).render_as_string(hide_password=True)
        err.print(f"worker started on {shown}; stop with Ctrl-C")
        reconciles = asyncio.create_task(run_reconcile_schedule(database, stop))
        store = identity_store(database)
        governance = asyncio.create_task(
            run_governance_schedule(database, store, stop, catch_all_share=Settings.from_env().catch_all_percent / 100)
        )
        nhis = asyncio.create_task(
            run_nhi_schedule(database, store, stop, nhi_user_types(Settings.from_env().nhi_user_types))
        )
        try:
            await propagator.run(stop)
        finally:
            for task in (reconciles, governance, nhis):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await propagator.close()
            await database.dispose()

    asyncio.run(main())


async def _others(
    propagator: Propagator, outbox: Outbox, target_id: int, progress: Callable[[int], None]
) -> tuple[int, int, int]:
    """Wait for the rows that another worker claimed before this sync could, and push any it lets go.

    A worker running beside the sync (``serve``'s own, or ``scimward worker``) may hold some of the
    target's rows; they are pushed there, not left over. Rows that failed at least once wait for
    their retry and are left over. A worker that died holding rows lets them go when its lease runs
    out, and this sync pushes them then: it waits no longer than one lease. (rows left, of them
    waiting to retry, rows this sync processed meanwhile)
    """
    deadline = time.monotonic() + propagator.lease.total_seconds() + 5
    processed = 0
    while True:
        remaining, failed = await outbox.pending(target_id)
        progress(remaining)
        if remaining <= failed or time.monotonic() > deadline:
            return remaining, failed, processed
        drained = await propagator.drain(target_id)
        processed += drained
        if not drained:
            await asyncio.sleep(SYNC_WAIT_POLL)


async def full_sync(url: str, name: str, *, quiet: bool = False) -> dict[str, int]:
    """Enqueue every identity in the target's scope (and every linked one, to deprovision what left
    it), then push them all with a progress bar. Resumable: an interrupted sync leaves its rows in
    the outbox, and running it again (or any worker) finishes them."""
    database = Database(url)
    try:
        target = Target.from_row(await TargetRepository(database).by_name(name))
        if target.row.quarantined:
            raise ScimError(
                f"target {name} is quarantined ({target.row.quarantine_reason}); "
                f"run `scimward target resume {name}` first"
            )
        identities, outbox = IdentityStore(database), Outbox(database)
        scope = parse_filter(target.config.scope) if target.config.scope else None
        enqueued = 0
        async for chunk in identities.ids(USER_TYPE, scope):
            await outbox.enqueue_all(target.id, "User", chunk)
            enqueued += len(chunk)
        if target.config.push_groups:
            group_scope = parse_filter(target.config.group_scope) if target.config.group_scope else None
            async for chunk in identities.ids(GROUP_TYPE, group_scope):
                await outbox.enqueue_all(target.id, "Group", chunk)
                enqueued += len(chunk)
        pending, _ = await outbox.pending(target.id)
        propagator = Propagator(database, batch=SYNC_BATCH, concurrency=SYNC_CONCURRENCY)
        try:
            await propagator.scan(target.id)
        except TargetError as exc:  # the target cannot be read at all: say so where `target status` looks
            await propagator.close()
            await TargetRepository(database).record_error(target.id, f"sync: {type(exc).__name__} {exc}")
            raise
        with Progress(
            TextColumn(f"sync {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet,
        ) as progress:
            task = progress.add_task("push", total=pending)
            processed = await propagator.drain(
                target.id, lambda n: progress.update(task, completed=min(pending, progress.tasks[0].completed + n))
            )
            remaining, failed, later = await _others(
                propagator, outbox, target.id, lambda left: progress.update(task, completed=max(0, pending - left))
            )
            processed += later
        await propagator.close()
        return {
            "enqueued": enqueued,
            "processed": processed,
            "pushed": max(0, pending - remaining),
            "remaining": remaining,
            "retrying": failed,
        }
    finally:
        await database.dispose()


async def target_status(url: str, name: str) -> dict[str, Any]:
    database = Database(url)
    try:
        return await status.target_status(database, name)
    finally:
        await database.dispose()


def print_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    table = Table("", "", show_header=False)
    for key, value in status.items():
        if value is None or value == []:
            shown = "-"
        elif isinstance(value, list | dict):
            shown = ", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)
        else:
            shown = str(value)
        table.add_row(key.replace("_", " "), shown)
    table_console().print(table)


Concurrency = Annotated[int, typer.Option(min=1, max=256, help="Pushes in flight at once.")]


def worker_command(
    database_url: DatabaseUrl = None,
    concurrency: Concurrency = 16,
    log_level: Annotated[
        str, typer.Option(envvar="SCIMWARD_LOG_LEVEL", help="debug, info, warning or error.")
    ] = "info",
    lease_seconds: Annotated[
        float, typer.Option(min=1, help="How long a claimed row is this worker's before another may take it (a crash).")
    ] = 120.0,
) -> None:
    """Push changes to targets (outbox rows) until stopped; run several against one PostgreSQL."""
    run_worker(checked_url(database_url), concurrency, log_level, lease_seconds)


def sync_command(
    name: Annotated[str, typer.Argument(help="The target's name.")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Push everything in a target's scope now, with a progress bar; resumable.

    Rows a running worker holds are waited for; exit 1 only when some are left waiting to retry."""
    url = checked_url(database_url)
    result = asyncio.run(full_sync(url, name, quiet=as_json))
    if as_json:
        print(json.dumps({"target": name, **result}, indent=2))
    else:
        by_others = result["pushed"] - min(result["pushed"], result["processed"])
        err.print(
            f"sync {name}: {result['pushed']} pushed"
            + (f" ({by_others} by another worker)" if by_others else "")
            + f", {result['remaining']} left ({result['retrying']} waiting to retry)"
        )
    if result["remaining"]:
        raise typer.Exit(code=ExitCode.ATTENTION)
