"""The gate from the command line: ``policy``, ``changes``, ``breaker`` and ``blast-radius``.

Every ``--as`` defaults to ``$SCIMWARD_ACTOR``, else the operating-system user. Exit codes: 0 done,
1 a change could not be decided as asked (four eyes, not pending), 2 bad input (an invalid policy,
an unknown change or target).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from scimward.cli.common import DatabaseUrl, checked_url, default_actor, fail, table_console
from scimward.policy import Approvals, UnknownSubject, identity_store, policies
from scimward.policy.blast_report import blast_radius_of
from scimward.store.database import Database
from scimward.store.provisioning import TargetRepository

out = table_console()
policy_app = typer.Typer(
    help="Show and apply the policy: rules, approvals and the mass-change breaker.", no_args_is_help=True
)
changes_app = typer.Typer(
    help="List, show, approve and reject changes (held changes need a second person).", no_args_is_help=True
)
breaker_app = typer.Typer(
    help="The mass-change breaker of each target: status, release, discard.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


Actor = Annotated[str | None, typer.Option("--as", help="Who decides ($SCIMWARD_ACTOR, else your OS user).")]
Note = Annotated[str | None, typer.Option("--note", help="Why, for the record.")]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(changes_app, name="changes")
    app.add_typer(breaker_app, name="breaker")
    app.command("blast-radius")(blast_radius_command)


async def _with(url: str, work: Any) -> Any:
    database = Database(url)
    try:
        return await work(database)
    finally:
        await database.dispose()


def _run(database_url: str | None, work: Any) -> Any:
    """Run ``work`` on the database; the project's errors go to the chokepoint (``cli.exits``)."""
    return asyncio.run(_with(checked_url(database_url), work))


def _approvals(database: Database) -> Approvals:
    return Approvals(database, identity_store(database).direct)


# -- policy ------------------------------------------------------------------------------------


@policy_app.command("apply")
def policy_apply(
    file: Annotated[Path, typer.Argument(help="A policy file (YAML: rules, breaker, pending_expiry).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and preview; change nothing.")] = False,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Validate every rule, print what changes and (with --dry-run) which identities it would deny or hold."""
    try:
        text = file.read_text()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from exc
    preview = _run(database_url, lambda db: policies.apply(db, text, actor or default_actor(), dry_run=dry_run))
    if preview.empty:
        out.print("The policy in force is the same: nothing changes.")
    for name in preview.added:
        out.print(f"[green]+[/green] rule {escape(name)}")
    for name in preview.removed:
        out.print(f"[red]-[/red] rule {escape(name)}")
    for name in preview.changed:
        out.print(f"[yellow]~[/yellow] rule {escape(name)}")
    for line in preview.settings:
        out.print(f"[yellow]~[/yellow] {escape(line)}")
    if dry_run:
        out.print(
            f"Checked {preview.checked} identities against the new rules: "
            f"{len(preview.affected)} would be denied or held."
        )
        for rule, action, rt, identity_id, label in preview.affected[:50]:
            out.print(f"  {action:5} {rt} {escape(label)} ({identity_id}) by rule {escape(rule)}")
        out.print("Dry run: nothing changed.")
    elif not preview.empty:
        out.print("Applied: the policy is in force (every process within a second).")


@policy_app.command("show")
def policy_show(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """The policy in force."""
    policy = _run(database_url, policies.current)
    document = {"version": policy.version, **policy.to_json()}
    if as_json:
        print(json.dumps(document, indent=2))
        return
    out.print(f"Policy version {policy.version}" + (" (none applied: built-in defaults)" if not policy.version else ""))
    table = Table("rule", "action", "when", "reason")
    for rule in policy.rules:
        action = rule.action + (f" ({rule.approvals})" if rule.action == "hold" else "")
        table.add_row(escape(rule.name), action, escape(rule.when.source), escape(rule.reason))
    out.print(table)
    out.print(f"breaker: {document['breaker']}; held changes expire after {document['pending_expiry']}")


# -- changes -----------------------------------------------------------------------------------


@changes_app.command("list")
def changes_list(
    status: Annotated[
        str | None,
        typer.Option("--status", help="applied, pending, approved, rejected, denied, superseded or expired."),
    ] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="One identity's changes (its id).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 200,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Changes, newest first."""
    from scimward.store.governance import STATUSES

    if status is not None and status not in STATUSES:
        raise fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    rows = _run(database_url, lambda db: _approvals(db).changes(status, identity, limit))
    if as_json:
        print(json.dumps([c.to_json() for c in rows], indent=2))
        return
    table = Table("id", "status", "op", "type", "name", "source", "actor", "reasons")
    for c in rows:
        table.add_row(
            c.id,
            c.status,
            c.op,
            c.resource_type,
            escape(c.label),
            escape(c.source or ""),
            escape(c.actor or ""),
            escape("; ".join(c.reasons)),
        )
    out.print(table)


@changes_app.command("diverged")
def changes_diverged(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Identities whose effective state (what targets get) differs from their source state, and why."""
    rows = _run(database_url, lambda db: _approvals(db).diverged())
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("identity", "type", "name", "source", "change", "status")
    for row in rows:
        table.add_row(
            row["identity"],
            row["type"],
            escape(str(row["name"] or "")),
            "deleted" if row["source_deleted"] else "differs",
            row["change"] or "",
            row["change_status"] or "",
        )
    out.print(table)


@changes_app.command("show")
def changes_show(
    change_id: Annotated[str, typer.Argument(help="The change's id (or its first characters).")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """One change: before and after, the decision and its reasons, approvals."""
    change = _run(database_url, lambda db: _approvals(db).show(change_id))
    document = change.to_json()
    if as_json:
        print(json.dumps(document, indent=2))
        return
    for key in (
        "id",
        "status",
        "op",
        "type",
        "identity",
        "name",
        "source",
        "actor",
        "decision",
        "reasons",
        "approvals_needed",
        "approvals",
        "held_by_breaker",
        "changed",
        "members_added",
        "members_removed",
        "blast_radius",
        "created",
        "decided",
        "expires",
        "note",
    ):
        out.print(f"[bold]{key}[/bold]: {escape(json.dumps(document[key]))}", soft_wrap=True)
    out.print("[bold]before[/bold]:", escape(json.dumps(change.before, indent=2)))
    out.print("[bold]after[/bold]:", escape(json.dumps(change.after, indent=2)))


@changes_app.command("approve")
def changes_approve(
    change_ids: Annotated[list[str], typer.Argument(help="The changes' ids.")],
    actor: Actor = None,
    note: Note = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Approve held changes (never your own); the last approval needed applies the change."""
    outcomes = _run(database_url, lambda db: _approvals(db).approve(change_ids, actor or default_actor(), note))
    for outcome in outcomes:
        out.print(f"{outcome.change_id}: {outcome.message}")


@changes_app.command("reject")
def changes_reject(
    change_ids: Annotated[list[str], typer.Argument(help="The changes' ids.")],
    actor: Actor = None,
    note: Note = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Reject held changes: the effective state stays where it is."""
    outcomes = _run(database_url, lambda db: _approvals(db).reject(change_ids, actor or default_actor(), note))
    for outcome in outcomes:
        out.print(f"{outcome.change_id}: {outcome.message}")


# -- breaker -----------------------------------------------------------------------------------


@breaker_app.command("status")
def breaker_status(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Each target's breaker: open or closed, and how many changes it holds."""
    rows = _run(database_url, lambda db: _approvals(db).breakers())
    if as_json:
        print(json.dumps({"targets": rows}, indent=2))
        return
    table = Table("target", "breaker", "held", "since", "reason")
    for row in rows:
        table.add_row(
            escape(row["name"]),
            "[red]open[/red]" if row["open"] else "closed",
            str(row["held"]),
            row["opened"] or "",
            escape(row["reason"] or ""),
        )
    out.print(table)


TargetOption = Annotated[str | None, typer.Option("--target", help="The target (default: every open breaker).")]


async def _breaker_targets(database: Database, name: str | None) -> list[tuple[int, str]]:
    rows = await _approvals(database).breakers()
    if name is not None:
        chosen = [r for r in rows if r["name"] == name]
        if not chosen:
            raise UnknownSubject(f"no target named {name!r}")
        return [(r["id"], r["name"]) for r in chosen]
    return [(r["id"], r["name"]) for r in rows if r["open"] or r["held"]]


@breaker_app.command("release")
def breaker_release(target: TargetOption = None, actor: Actor = None, database_url: DatabaseUrl = None) -> None:
    """Close the breaker and push what it held."""
    by = actor or default_actor()

    async def work(db: Database) -> list[tuple[str, int]]:
        return [
            (name, await _approvals(db).release(target_id, by))
            for target_id, name in await _breaker_targets(db, target)
        ]

    for name, count in _run(database_url, work):
        out.print(f"{escape(name)}: breaker closed; {count} held change(s) released to the target")


@breaker_app.command("discard")
def breaker_discard(target: TargetOption = None, actor: Actor = None, database_url: DatabaseUrl = None) -> None:
    """Close the breaker and reject what it held (the effective state stays; the divergence stays visible)."""
    by = actor or default_actor()

    async def work(db: Database) -> list[tuple[str, int]]:
        return [
            (name, await _approvals(db).discard(target_id, by))
            for target_id, name in await _breaker_targets(db, target)
        ]

    for name, count in _run(database_url, work):
        out.print(f"{escape(name)}: breaker closed; {count} held change(s) discarded")


# -- blast radius ------------------------------------------------------------------------------


def blast_radius_command(
    subject: Annotated[str, typer.Argument(help="user:USERNAME or group:DISPLAYNAME (or user:ID, group:ID).")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """What an identity drives downstream: accounts and entitlements per target."""
    kind, _, name = subject.partition(":")
    if kind not in ("user", "group") or not name:
        raise fail(f"{subject!r}: give user:NAME or group:NAME")

    async def work(db: Database) -> dict[str, Any]:
        names = {str(t.id): t.name for t in await TargetRepository(db).all()}
        report = await blast_radius_of(identity_store(db), kind, name)
        report["per_target"] = {names.get(k, k): v for k, v in report["per_target"].items()}
        return report

    report = _run(database_url, work)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    out.print(
        f"{escape(subject)}: {report['accounts']} account(s) and {report['entitlements']} entitlement(s) "
        f"on {report['targets']} target(s); weighted {report['weighted']}"
    )
    table = Table("target", "accounts", "entitlements")
    for target, counts in report["per_target"].items():
        table.add_row(escape(target), str(counts["accounts"]), str(counts["entitlements"]))
    out.print(table)
