"""``scimward source ...`` and ``scimward import``: the sources identities' truth comes from (issue 17)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, default_actor, err, fail, table_console
from scimward.cli.exits import ExitCode
from scimward.governance.sources import CheckReport, Importer, ImportReport, SourceCheck, load_format
from scimward.governance.sources.config import check_name, source_config
from scimward.policy import identity_store
from scimward.store.database import Database
from scimward.store.governance import DEFAULT_PRIORITY, SourceRepository, SourceRow

source_app = typer.Typer(
    help="Sources: where identities' truth comes from (an IdP over SCIM, HR exports).", no_args_is_help=True
)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
T = TypeVar("T")
#: Rows between two updates of the import's progress bar.
PROGRESS_EVERY = 100


def _run(database_url: str | None, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the database; the project's errors go to the chokepoint (``cli.exits``)."""
    url = checked_url(database_url)

    async def run() -> T:
        database = Database(url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. okta or workday.")],
    kind: Annotated[str, typer.Option("--kind", help="scim (an IdP's SCIM client), csv or json (an HR export).")],
    priority: Annotated[
        int,
        typer.Option("--priority", help="Where two sources of a kind state the same person, the lower number wins."),
    ] = DEFAULT_PRIORITY,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="An HR source's mapping file (YAML: columns, statuses, date_format)."),
    ] = None,
    correlate: Annotated[
        str | None,
        typer.Option(
            "--correlate",
            help="Correlation keys in order, comma-separated: employeeNumber, emails, userName "
            "(default employeeNumber,emails).",
        ),
    ] = None,
    joiners: Annotated[
        str,
        typer.Option(
            "--joiners",
            help="An HR source's records that match no user: 'report' them (a finding), or 'create' the "
            "user once the hire date has come.",
        ),
    ] = "report",
    database_url: DatabaseUrl = None,
) -> None:
    """Add a source."""
    check_name(name)
    config = source_config(
        kind, mapping=mapping, correlate=correlate.split(",") if correlate is not None else None, joiners=joiners
    )
    row = _run(
        database_url,
        lambda db: SourceRepository(db).add(name, kind, priority=priority, created_by=default_actor(), config=config),
    )
    err.print(f"Source [bold]{escape(row.name)}[/bold] ({row.kind}) added.", highlight=False)


@source_app.command("list")
def source_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List sources: name, kind, priority, last import."""
    rows: list[SourceRow] = _run(database_url, lambda db: SourceRepository(db).all())
    if as_json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return
    table = Table("name", "kind", "priority", "mapping", "last import", "created by")
    for row in rows:
        table.add_row(
            row.name,
            row.kind,
            str(row.priority),
            str(row.config.get("mapping") or "-"),
            f"{row.last_import:%Y-%m-%d %H:%M}" if row.last_import else "never",
            row.created_by,
        )
    table_console().print(table)


def import_command(
    name: Annotated[str, typer.Argument(help="The HR source (scimward source add NAME --kind csv|json).")],
    file: Annotated[Path, typer.Argument(help="The export: CSV, a JSON array, or JSON Lines.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and count; change nothing.")] = False,
    actor: Annotated[str | None, typer.Option("--as", help="Who imports (default $SCIMWARD_ACTOR or you).")] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Import an HR export: each row a change through the gate; bad rows are reported by line, exit 1."""
    report = _run(database_url, lambda db: _import(db, name, file, dry_run, actor or default_actor()))
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines:
            err.print(f"[red]rejected[/red] {escape(line)}", highlight=False, soft_wrap=True)
        verb = "would change" if dry_run else "changed"
        err.print(
            f"{report.rows} rows: created {report.created}, {verb} {report.changed}, "
            f"unchanged {report.unchanged}, unmatched {report.unmatched}, ambiguous {report.ambiguous}, "
            f"rejected {len(report.rejected)}.",
            highlight=False,
        )
        for review in report.reviews:
            err.print(f"access review opened: {escape(review)} (scimward review show NAME)", highlight=False)
    if not report.ok:
        raise typer.Exit(ExitCode.ATTENTION)


async def _import(database: Database, name: str, file: Path, dry_run: bool, actor: str) -> ImportReport:
    source = await SourceRepository(database).get(name)
    if not source.is_hr:
        raise fail(f"source {name!r} is a {source.kind} source: only csv and json sources are imported")
    mapping = source.config.get("mapping")
    fmt = load_format(Path(mapping) if mapping else None)
    importer = Importer(database, identity_store(database), source, actor=actor)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"importing {file.name}", total=None, rows=0)
        rows = 0

        def advance(done: int, size: int) -> None:
            nonlocal rows
            rows += 1
            # The bar redraws ten times a second: an update per row cost a backfill about a second.
            if rows % PROGRESS_EVERY == 0 or done >= size:
                bar.update(task, completed=done, total=size, rows=rows)

        return await importer.run(file, source.kind, fmt, dry_run=dry_run, on_row=advance)


@source_app.command("check")
def source_check(
    actor: Annotated[
        str | None, typer.Option("--as", help="Who deprovisions (default $SCIMWARD_ACTOR or you).")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Deprovision due terminations through the gate, then check HR / the hub / targets: findings."""
    report: CheckReport = _run(
        database_url, lambda db: SourceCheck(db, identity_store(db), actor=actor or default_actor()).run()
    )
    if as_json:
        print(
            json.dumps(
                {
                    "created": report.created,
                    "deprovisioned": report.deprovisioned,
                    "failed": report.failed,
                    "opened": report.opened,
                    "kept": report.kept,
                    "resolved": report.resolved,
                    "findings": report.by_kind,
                },
                indent=2,
            )
        )
    else:
        for line in report.failed:
            err.print(f"[red]not deprovisioned[/red] {escape(line)}", highlight=False, soft_wrap=True)
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_kind.items())) or "none"
        err.print(
            f"Created {report.created} joiners, deprovisioned {report.deprovisioned}; findings: {kinds} "
            f"(opened {report.opened}, resolved {report.resolved}); scimward findings lists them.",
            highlight=False,
        )
    if report.failed or report.by_kind:
        raise typer.Exit(ExitCode.ATTENTION)
