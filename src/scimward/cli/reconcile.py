"""``scimward reconcile NAME`` and ``scimward findings``: read a target back, list the drift found.

``reconcile`` exits 0 when the target holds exactly what it should, or when ``--repair`` repaired
every finding and pushed every correction; 1 when drift is left open; otherwise as ``cli.exits``
says (2 an unknown or quarantined target or another reconcile running, 4 the target unreachable).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from scimward.cli.common import DatabaseUrl, checked_url, err
from scimward.cli.exits import ExitCode
from scimward.cli.logs import configure_logging
from scimward.store.database import Database
from scimward.store.governance import Finding, FindingStore
from scimward.store.provisioning import LinkStore, Outbox, TargetRepository
from scimward.sync.drift import SEVERITY, Kind
from scimward.sync.propagate import Propagator
from scimward.sync.reconcile import Reconciler, ReconcileReport
from scimward.sync.targets import Target

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Limit = Annotated[int, typer.Option("--limit", min=0, help="Show at most this many findings (0: all).")]
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def reconcile_command(
    name: Annotated[str, typer.Argument(help="The target's name.")],
    repair: Annotated[bool, typer.Option(
        "--repair", help="Enqueue corrections through propagation (and deactivate orphans if the target's "
                         "orphans setting says so). Default: the target's reconcile_repair setting.")] = False,
    push: Annotated[bool, typer.Option(
        "--push/--no-push", help="With --repair, push the corrections now, as `scimward sync` does; "
                                 "--no-push leaves them to the workers.")] = True,
    as_json: AsJson = False,
    limit: Limit = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """Read a target's Users and Groups back and report the drift from what it should hold."""
    configure_logging("warning")  # progress and the summary speak; the log only for trouble
    url = checked_url(database_url)
    report, found, pushed, left = asyncio.run(_reconcile(url, name, True if repair else None, push, limit, as_json))
    if as_json:
        print(json.dumps({**report.to_json(), "pushed": pushed, "left": left,
                          "findings": [f.to_json() for f in found]}, indent=2, default=str))
    else:
        _print_summary(report, pushed)
    if needs_attention(report, left):
        raise typer.Exit(code=ExitCode.ATTENTION)


def needs_attention(report: ReconcileReport, left: int) -> bool:
    """Whether drift is left for a person: open findings, unless this run repaired every one of them and
    no correction is left unpushed (``left``: the target's outbox rows after the push)."""
    if not report.open:
        return False
    repaired = sum(count["repaired"] for count in report.counts.values())
    return not report.repair or repaired < report.open or left > 0


async def _reconcile(url: str, name: str, repair: bool | None, push: bool, limit: int, quiet: bool
                     ) -> tuple[ReconcileReport, list[Finding], int | None, int]:
    database = Database(url)
    try:
        row = await TargetRepository(database).by_name(name)
        linked = await LinkStore(database).counts(row.id)
        expected = {"Users": sum(n for key, n in linked.items() if key.startswith("User:")),
                    "Groups": sum(n for key, n in linked.items() if key.startswith("Group:"))}
        reconciler = Reconciler(database)
        with Progress(TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, disable=quiet and not err.is_terminal) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(phase: str, n: int) -> None:
                if phase not in tasks:
                    label = {"Users": "read Users", "Groups": "read Groups", "hub": "check the hub"}[phase]
                    tasks[phase] = progress.add_task(label, total=expected.get(phase) or None)
                task = tasks[phase]
                progress.advance(task, n)
                state = progress.tasks[task]
                if state.total is not None and state.completed > state.total:
                    progress.update(task, total=state.completed)  # the target holds more than the hub linked

            report = await reconciler.run_target(Target.from_row(row), repair=repair, trigger="cli",
                                                 progress=advance)
        pushed = None
        if report.repair and push and report.enqueued:
            propagator = Propagator(database, batch=200)
            try:
                pushed = await propagator.drain(row.id)
            finally:
                await propagator.close()
        found = await FindingStore(database).list(target_id=row.id, limit=limit or None)
        # Left for the workers with --no-push; left over (failing) after a push.
        left = (await Outbox(database).pending(row.id))[0] if report.repair and push else 0
        return report, found, pushed, left
    finally:
        await database.dispose()


def _print_summary(report: ReconcileReport, pushed: int | None) -> None:
    table = Table("drift", "severity", "open", "new", "repaired", title=f"reconcile {report.target}")
    for kind in Kind:
        counts = report.counts.get(kind.value, {"open": 0, "new": 0, "repaired": 0})
        severity = SEVERITY[kind].value
        style = _SEVERITY_STYLE[severity] if counts["open"] else "dim"
        table.add_row(kind.value, severity, str(counts["open"]), str(counts["new"]), str(counts["repaired"]),
                      style=style)
    table.add_section()
    table.add_row("total", "", str(report.open), str(sum(c["new"] for c in report.counts.values())),
                  str(sum(c["repaired"] for c in report.counts.values())))
    Console().print(table)
    seconds = (report.finished - report.started).total_seconds()
    line = (f"read {report.users_read} users and {report.groups_read} groups in {seconds:.1f} s; "
            f"{report.resolved} resolved since the last run")
    if report.repair:
        line += f"; {report.enqueued} corrections enqueued, {report.orphans_deactivated} orphans deactivated"
        if pushed is not None:
            line += f", {pushed} pushed"
    err.print(escape(line))
    if report.open:
        err.print(f"list them: scimward findings --target {escape(report.target)}")


def findings_command(
    target: Annotated[str | None, typer.Option("--target", help="Only this target's findings.")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved findings too.")] = False,
    as_json: AsJson = False,
    limit: Limit = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """List open findings: drift that reconciles found, the most severe first."""
    url = checked_url(database_url)

    async def run() -> tuple[list[Finding], int]:
        database = Database(url)
        try:
            target_id = (await TargetRepository(database).by_name(target)).id if target else None
            store = FindingStore(database)
            found = await store.list(target_id=target_id, include_resolved=include_resolved, limit=limit or None)
            return found, await store.count_open(target_id)
        finally:
            await database.dispose()

    found, total_open = asyncio.run(run())
    if as_json:
        print(json.dumps([f.to_json() for f in found], indent=2, default=str))
        return
    table = Table("severity", "drift", "target", "identity / account", "attribute", "desired / last pushed / actual",
                  "first seen", "last seen", *(["status"] if include_resolved else []), "repair")
    for f in found:
        values = "\n".join(f"{label}: {_value(value)}" for label, value in
                           (("desired", f.desired), ("pushed", f.last_pushed), ("actual", f.actual)))
        table.add_row(f"[{_SEVERITY_STYLE.get(f.severity, '')}]{f.severity}[/]", f.kind, escape(f.target or "(hub)"),
                      escape(f.identity_id or f"account {f.remote_id}"), escape(f.attribute), values,
                      f"{f.first_seen:%Y-%m-%d %H:%M}", f"{f.last_seen:%Y-%m-%d %H:%M}",
                      *([f.status] if include_resolved else []), escape(f.repair or ""))
    Console().print(table)
    shown = sum(1 for f in found if f.status == "open")
    if total_open > shown:
        err.print(f"{total_open - shown} more open findings; --limit 0 shows all")


def _value(value: Any, width: int = 40) -> str:
    text = "-" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return escape(text if len(text) <= width else text[:width - 1] + "…")
