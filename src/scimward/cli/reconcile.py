"""``scimward reconcile NAME`` and ``scimward findings [accept]``: read a target back, list the findings.

``reconcile`` exits 0 when the target holds exactly what it should, or when ``--repair`` repaired
every finding and pushed every correction; 1 when drift is left open; otherwise as ``cli.exits``
says (2 an unknown or quarantined target or another reconcile running, 4 the target unreachable).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from scimward.cli.common import DatabaseUrl, checked_url, default_actor, err, fail, table_console
from scimward.cli.exits import ExitCode
from scimward.cli.logs import configure_logging
from scimward.governance import finding_filters
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import Finding, FindingStore
from scimward.store.provisioning import LinkStore, Outbox, Readback, TargetRepository
from scimward.sync.drift import SEVERITY, Kind
from scimward.sync.propagate import Propagator
from scimward.sync.reconcile import Reconciler, ReconcileReport
from scimward.sync.targets import Target

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Limit = Annotated[int, typer.Option("--limit", min=0, help="Show at most this many findings (0: all).")]
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def reconcile_command(
    name: Annotated[str, typer.Argument(help="The target's name.")],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Enqueue corrections through propagation (and deactivate orphans if the target's "
            "orphans setting says so). Default: the target's reconcile_repair setting.",
        ),
    ] = False,
    push: Annotated[
        bool,
        typer.Option(
            "--push/--no-push",
            help="With --repair, push the corrections now, as `scimward sync` does; "
            "--no-push leaves them to the workers.",
        ),
    ] = True,
    as_json: AsJson = False,
    limit: Limit = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """Read a target's Users and Groups back and report the drift from what it should hold."""
    configure_logging("warning")  # progress and the summary speak; the log only for trouble
    url = checked_url(database_url)
    report, found, names, pushed, left = asyncio.run(
        _reconcile(url, name, True if repair else None, push, limit, as_json)
    )
    if as_json:
        print(
            json.dumps(
                {
                    **report.to_json(),
                    "pushed": pushed,
                    "left": left,
                    "findings": [{**f.to_json(), "name": _name(f, names)} for f in found],
                },
                indent=2,
                default=str,
            )
        )
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


async def _reconcile(
    url: str, name: str, repair: bool | None, push: bool, limit: int, quiet: bool
) -> tuple[ReconcileReport, list[Finding], dict[str, str], int | None, int]:
    database = Database(url)
    try:
        row = await TargetRepository(database).by_name(name)
        linked = await LinkStore(database).counts(row.id)
        expected = {
            "Users": sum(n for key, n in linked.items() if key.startswith("User:")),
            "Groups": sum(n for key, n in linked.items() if key.startswith("Group:")),
        }
        reconciler = Reconciler(database)
        with Progress(
            TextColumn("{task.description:>16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet and not err.is_terminal,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(phase: str, n: int) -> None:
                if phase not in tasks:
                    label = {
                        "Users": "read Users",
                        "Agents": "read Agents",
                        "Groups": "read Groups",
                        "hub": "check the hub",
                    }.get(phase, phase)
                    tasks[phase] = progress.add_task(label, total=expected.get(phase) or None)
                task = tasks[phase]
                progress.advance(task, n)
                state = progress.tasks[task]
                if state.total is not None and state.completed > state.total:
                    progress.update(task, total=state.completed)  # the target holds more than the hub linked

            report = await reconciler.run_target(Target.from_row(row), repair=repair, trigger="cli", progress=advance)
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
        return report, found, await _names(database, found), pushed, left
    finally:
        await database.dispose()


def _print_summary(report: ReconcileReport, pushed: int | None) -> None:
    table = Table("drift", "severity", "open", "new", "repaired", title=f"reconcile {report.target}")
    for kind in Kind:
        counts = report.counts.get(kind.value, {"open": 0, "new": 0, "repaired": 0})
        severity = SEVERITY[kind].value
        style = _SEVERITY_STYLE[severity] if counts["open"] else "dim"
        table.add_row(
            kind.value, severity, str(counts["open"]), str(counts["new"]), str(counts["repaired"]), style=style
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        str(report.open),
        str(sum(c["new"] for c in report.counts.values())),
        str(sum(c["repaired"] for c in report.counts.values())),
    )
    table_console().print(table)
    seconds = (report.finished - report.started).total_seconds()
    agents = f", {report.agents_read} agents" if report.agents_read else ""
    line = (
        f"read {report.users_read} users{agents} and {report.groups_read} groups in {seconds:.1f} s; "
        f"{report.resolved} resolved since the last run"
    )
    if report.repair:
        line += f"; {report.enqueued} corrections enqueued, {report.orphans_deactivated} orphans deactivated"
        if pushed is not None:
            line += f", {pushed} pushed"
    err.print(escape(line))
    if report.open:
        err.print(f"list them: scimward findings --target {escape(report.target)}")


findings_app = typer.Typer(
    help="List findings: drift, gate, governance; by framework control, owner, status.", invoke_without_command=True
)


@findings_app.callback()
def findings_command(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target", help="Only this target's findings.")] = None,
    framework: Annotated[
        str | None,
        typer.Option(
            "--framework",
            help="Only findings that are evidence for this control (owasp-nhi:NHI1, csf:PR.AA-05) or framework (csf).",
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only findings this owner must act on.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="Only findings in this status (open, acknowledged, risk_accepted, resolved); "
            "repeat for several. Default: the live ones.",
        ),
    ] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved findings too.")] = False,
    as_json: AsJson = False,
    limit: Limit = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """List findings: drift, gate, governance; by framework control, owner, status."""
    if ctx.invoked_subcommand is not None:
        return
    url = checked_url(database_url)
    kinds, statuses = _filters(framework, status)

    async def run() -> tuple[list[Finding], int, dict[str, str]]:
        database = Database(url)
        try:
            target_id = (await TargetRepository(database).by_name(target)).id if target else None
            store = FindingStore(database)
            found = await store.list(
                target_id=target_id,
                include_resolved=include_resolved,
                limit=limit or None,
                kinds=kinds,
                statuses=statuses,
                owner=owner,
            )
            return found, await store.count_open(target_id), await _names(database, found)
        finally:
            await database.dispose()

    found, total_open, names = asyncio.run(run())
    if as_json:
        print(
            json.dumps(
                [{**finding_filters.finding_json(f), "name": _name(f, names)} for f in found], indent=2, default=str
            )
        )
        return
    shows_status = include_resolved or bool(statuses) or any(f.status != "open" for f in found)
    table = Table(
        "id",
        "severity",
        "kind",
        "target",
        "identity / account",
        "attribute",
        "desired / last pushed / actual",
        "owner",
        "first seen",
        *(["status"] if shows_status else []),
        "frameworks",
    )
    for f in found:
        values = "\n".join(
            f"{label}: {_value(value)}"
            for label, value in (("desired", f.desired), ("pushed", f.last_pushed), ("actual", f.actual))
        )
        state = f.status + (
            f" until {f.accepted_until:%Y-%m-%d}" if f.accepted_until and f.status == "risk_accepted" else ""
        )
        table.add_row(
            str(f.id),
            f"[{_SEVERITY_STYLE.get(f.severity, '')}]{f.severity}[/]",
            f.kind,
            escape(f.target or "(hub)"),
            escape(_subject(f, names)),
            escape(f.attribute),
            values,
            escape(f.owner or "-"),
            f"{f.first_seen:%Y-%m-%d %H:%M}",
            *([state] if shows_status else []),
            escape(", ".join(finding_filters.frameworks_of(f.kind))),
        )
    table_console().print(table)
    shown = sum(1 for f in found if f.status == "open")
    if total_open > shown and not (kinds or statuses or owner):
        err.print(f"{total_open - shown} more open findings; --limit 0 shows all")


async def _names(database: Database, found: list[Finding]) -> dict[str, str]:
    """identity id -> its userName or displayName, from the hub's effective state (a few queries)."""
    readback, names = Readback(database), dict[str, str]()
    for rt, key in ((USER_TYPE, "userName"), (GROUP_TYPE, "displayName")):
        ids = {f.identity_id for f in found if f.identity_id and f.resource_type == rt.name}
        for identity in (await readback.identities(rt, ids, None)).values() if ids else ():
            if isinstance(identity.doc.get(key), str):
                names[identity.id] = identity.doc[key]
    return names


def _name(finding: Finding, names: dict[str, str]) -> str | None:
    """The account's name: the hub's identity's, else what the finding saw of the account (one the hub
    deleted, or an orphan the hub never had)."""
    if finding.identity_id in names:
        return names[finding.identity_id]
    for seen in (finding.actual, finding.last_pushed, finding.desired):
        if isinstance(seen, dict):
            for key in ("userName", "displayName"):
                if isinstance(seen.get(key), str):
                    return str(seen[key])
    return None


def _subject(finding: Finding, names: dict[str, str]) -> str:
    subject = finding.identity_id or f"account {finding.remote_id or finding.subject}"
    name = _name(finding, names)
    return f"{name}\n{subject}" if name else subject


@findings_app.command("accept")
def accept_command(
    finding_id: Annotated[int, typer.Argument(help="The finding's id (scimward findings shows it).")],
    until: Annotated[str, typer.Option("--until", help="How long: 30d, 12h, 2w, or a date (2027-01-31).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the risk is accepted (kept with the finding).")],
    actor: Annotated[
        str | None, typer.Option("--as", help="Who accepts it (default: $SCIMWARD_ACTOR, else the OS user).")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Accept a finding's risk until a date, with a reason: it stays live, and opens again after."""
    url = checked_url(database_url)
    try:
        end = finding_filters.accepted_until(until)
    except finding_filters.FilterError as exc:
        raise fail(f"--{exc}") from exc

    async def run() -> Finding:
        database = Database(url)
        try:
            return await FindingStore(database).accept(
                finding_id, until=end, reason=reason, actor=actor or default_actor()
            )
        finally:
            await database.dispose()

    finding = asyncio.run(run())
    if as_json:
        print(json.dumps(finding_filters.finding_json(finding), indent=2, default=str))
        return
    err.print(
        f"finding {finding.id} ({finding.kind}) risk accepted until {end:%Y-%m-%d %H:%M} UTC by "
        f"{escape(finding.accepted_by or '')}; it opens again after that"
    )


def _filters(framework: str | None, status: list[str] | None) -> tuple[list[str] | None, list[str] | None]:
    try:
        return finding_filters.framework_kinds(framework), finding_filters.statuses(status)
    except finding_filters.FilterError as exc:
        raise fail(f"--{exc!s}") from exc


def _value(value: Any, width: int = 40) -> str:
    text = "-" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return escape(text if len(text) <= width else text[: width - 1] + "…")
