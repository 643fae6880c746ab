"""``scimward review``: access-review campaigns whose revokes remove access, through the gate.

Exit codes: 0 done, 1 a revoke did not fully apply (held by the gate, or failed), 2 bad input (an
unknown campaign or item, a self-review, a decided item, a closed campaign).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, default_actor, fail, table_console
from scimward.cli.exits import ExitCode
from scimward.cli.groups import run
from scimward.durations import parse_duration
from scimward.governance.reviews import Decided, Reviews
from scimward.governance.reviews.report import campaign_json, item_json, report, report_csv

out = table_console()
review_app = typer.Typer(
    help="Access reviews: campaigns over groups or a target; revokes remove the access.", no_args_is_help=True
)

Actor = Annotated[str | None, typer.Option("--as", help="Who acts ($SCIMWARD_ACTOR, else your OS user).")]


@review_app.command("start")
def review_start(
    name: Annotated[str, typer.Argument(help="The campaign's name (unique).")],
    groups: Annotated[
        str | None,
        typer.Option(
            "--groups",
            help="A SCIM filter over Groups, e.g. "
            "'urn:scimward:params:scim:schemas:extension:governance:2.0:Group:"
            "privileged eq true'.",
        ),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Review every account on this target.")] = None,
    reviewer: Annotated[str, typer.Option("--reviewer", help="owner, manager or a userName.")] = "owner",
    due: Annotated[str, typer.Option("--due", help="How long reviewers have, e.g. 14d.")] = "14d",
    default: Annotated[str, typer.Option("--default", help="keep or revoke: what undecided items become.")] = "keep",
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Start a campaign: one item per (member, group) or (account, target), with context and a recommendation."""
    within = parse_duration(due, "--due")
    campaign = run(
        database_url,
        lambda db: Reviews(db).start(
            name,
            groups=groups,
            target=target,
            reviewer=reviewer,
            due=within,
            default=default,
            actor=actor or default_actor(),
        ),
    )
    out.print(
        f"Started campaign {escape(campaign.name)}: {campaign.items} item(s), due "
        f"{campaign.due:%Y-%m-%d %H:%M} UTC, undecided items become {campaign.default_decision}."
    )


@review_app.command("list")
def review_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Campaigns, newest first, with their counts of kept, revoked and undecided items."""
    campaigns = run(database_url, lambda db: Reviews(db).campaigns())
    if as_json:
        print(json.dumps({"campaigns": [campaign_json(c) for c in campaigns]}, indent=2))
        return
    table = Table("campaign", "status", "scope", "items", "keep", "revoke", "undecided", "due")
    for c in campaigns:
        table.add_row(
            escape(c.name),
            c.status,
            escape(f"{c.scope_kind}: {c.scope}"),
            str(c.items),
            str(c.counts.get("keep", 0)),
            str(c.counts.get("revoke", 0)),
            str(c.counts.get("undecided", 0)),
            f"{c.due:%Y-%m-%d}",
        )
    out.print(table)


@review_app.command("show")
def review_show(
    name: Annotated[str, typer.Argument(help="The campaign.")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A campaign's items: member, group or target, recommendation and why, decision, outcome."""
    campaign, items = run(database_url, lambda db: Reviews(db).show(name))
    if as_json:
        print(json.dumps({**campaign_json(campaign), "items": [item_json(i) for i in items]}, indent=2))
        return
    out.print(
        f"Campaign {escape(campaign.name)} ({campaign.status}), due {campaign.due:%Y-%m-%d}, "
        f"default {campaign.default_decision}"
    )
    table = Table("item", "member", "group / target", "granted", "recommendation", "decision", "outcome")
    for i in items:
        granted = f"{i.granted:%Y-%m-%d} by {i.granted_by or '?'}" if i.granted else "-"
        advice = i.recommendation + (f" ({'; '.join(i.reasons)})" if i.reasons else "")
        decision = f"{i.decision} by {i.decided_by}" if i.decision else "-"
        table.add_row(
            str(i.number),
            escape(i.member_name),
            escape(i.group_name or i.target_name or ""),
            escape(granted),
            escape(advice),
            escape(decision),
            escape(i.outcome or "-"),
        )
    out.print(table)


def _decision_items(items: Sequence[str]) -> tuple[list[int], str]:
    if len(items) < 2 or items[-1] not in ("keep", "revoke"):
        raise fail("usage: scimward review decide CAMPAIGN ITEM... keep|revoke --as USER")
    numbers: list[int] = []
    for given in items[:-1]:
        low, _, high = given.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise fail(f"an item is a number or a range like 3-7, not {given!r}")
        numbers += list(range(int(low), int(high or low) + 1))
    return numbers, items[-1]


@review_app.command("decide")
def review_decide(
    campaign: Annotated[str, typer.Argument(help="The campaign.")],
    items: Annotated[list[str], typer.Argument(help="Item numbers (or ranges like 3-7), then keep or revoke.")],
    actor: Actor = None,
    note: Annotated[str | None, typer.Option("--note", help="Why, for the record.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Decide items keep or revoke (nobody decides their own access); a revoke is removed at once."""
    numbers, decision = _decision_items(items)
    decided = run(
        database_url, lambda db: Reviews(db).decide(campaign, numbers, decision, actor or default_actor(), note)
    )
    _print_outcomes(decided)


@review_app.command("close")
def review_close(
    campaign: Annotated[str, typer.Argument(help="The campaign.")],
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Close a campaign: undecided items take its default now, before the due date."""
    decided = run(database_url, lambda db: Reviews(db).close(campaign, actor or default_actor()))
    out.print(f"Closed {escape(campaign)}: {len(decided)} undecided item(s) took the default.")
    _print_outcomes(decided)


@review_app.command("report")
def review_report(
    campaign: Annotated[str, typer.Argument(help="The campaign.")],
    output: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    database_url: DatabaseUrl = None,
) -> None:
    """Evidence: every item, decision, decider, time, note and the remediation's outcome per target."""
    if output not in ("json", "csv"):
        raise fail("--format is json or csv")
    document = run(database_url, lambda db: report(Reviews(db), campaign))
    if output == "csv":
        print(report_csv(document), end="")
    else:
        print(json.dumps(document, indent=2))


def _print_outcomes(decided: Sequence[Decided]) -> None:
    attention = False
    for d in decided:
        if d.outcome is None:
            continue
        attention = attention or d.outcome in ("held", "failed")
        out.print(f"item {d.number}: {d.decision}: {d.outcome}" + (f" ({escape(d.detail)})" if d.detail else ""))
    kept = sum(1 for d in decided if d.decision == "keep")
    revoked = len(decided) - kept
    out.print(f"{kept} kept, {revoked} revoked.")
    if attention:
        raise typer.Exit(ExitCode.ATTENTION)
