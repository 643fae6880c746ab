"""``scimward audit verify | export | head``: the hash-chained audit trail, checked, exported, pinned.

``verify`` walks every lane's chain and exits 1 naming the first altered, removed or inserted event;
``export`` writes events as JSON lines (streamed, oldest first); ``head`` prints the digest of every
lane's head, to be kept elsewhere: a trail rewritten from the start verifies, but not to that digest.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, err, fail
from scimward.cli.exits import ExitCode
from scimward.store.database import Database
from scimward.store.governance import TrailStatus, export_trail, trail_head, verify_trail

audit_app = typer.Typer(help="The audit trail: verify its hash chain, export it, print its head.", no_args_is_help=True)

Moment = Annotated[str | None, typer.Option(help="An ISO 8601 time in UTC, e.g. 2026-12-01 or 2026-12-01T08:00:00.")]


def parse_moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time, naive UTC as the trail stores it (an offset is converted to UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(f"{option} {text!r} is not an ISO 8601 date or time (e.g. 2026-12-01T08:00:00)") from exc
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


@audit_app.command("verify")
def verify_command(
    as_json: AsJson = False,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head", help="Fail unless the trail's head is this digest (a copy of `audit head` kept elsewhere)."
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Walk the audit trail's hash chain; exit 1 naming the first altered, removed or inserted event."""
    url = checked_url(database_url)

    async def run() -> TrailStatus:
        database = Database(url)
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("verifying the audit trail: {task.completed:,} events"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=as_json,
            ) as bar:
                task = bar.add_task("verify", total=None)
                return await verify_trail(database, lambda n: bar.advance(task, n))
        finally:
            await database.dispose()

    status = asyncio.run(run())
    head_differs = expect_head is not None and expect_head.strip().lower() != status.head
    if as_json:
        print(json.dumps({**status.to_json(), "head_expected": expect_head, "head_matches": not head_differs}))
    if status.broken is not None:
        raise fail(f"the audit trail is broken: {status.broken} ({status.events:,} events checked)", ExitCode.ATTENTION)
    if head_differs:
        raise fail(
            f"the audit trail's head is {status.head}, not the one expected: it was rewritten, or "
            "events were appended since",
            ExitCode.ATTENTION,
        )
    if not as_json:
        err.print(f"audit trail intact: {status.events:,} events, head {status.head}")


@audit_app.command("export")
def export_command(since: Moment = None, until: Moment = None, database_url: DatabaseUrl = None) -> None:
    """Write audit events as JSON lines on stdout, oldest first: since <= time < until."""
    url = checked_url(database_url)
    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")

    async def run() -> int:
        database = Database(url)
        written = 0
        out = sys.stdout.buffer
        try:
            async for event in export_trail(database, start, end):
                out.write(orjson.dumps(event.to_json()) + b"\n")
                written += 1
            out.flush()
        finally:
            await database.dispose()
        return written

    written = asyncio.run(run())
    err.print(f"{written:,} audit events exported")


@audit_app.command("head")
def head_command(database_url: DatabaseUrl = None) -> None:
    """Print the audit trail's head: one digest of every lane's newest event, to keep elsewhere."""
    url = checked_url(database_url)

    async def run() -> str:
        database = Database(url)
        try:
            return await trail_head(database)
        finally:
            await database.dispose()

    print(asyncio.run(run()))
