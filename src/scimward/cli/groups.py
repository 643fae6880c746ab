"""``scimward group``: least-privilege governance of groups (owners, purpose, privilege, cadence).

``group set`` is a change through the gate (source ``cli``, actor ``--as``), as an IdP's SCIM write
of the same extension would be.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, default_actor, table_console
from scimward.durations import parse_days
from scimward.governance.groups import GovernanceUpdate, list_groups, set_governance
from scimward.store.database import Database

out = table_console()
group_app = typer.Typer(
    help="Group governance: owners, purpose, privilege, review cadence, membership expiry.", no_args_is_help=True
)


def run(database_url: str | None, work: Callable[[Database], Awaitable[Any]]) -> Any:
    """Run ``work`` on the database; the project's errors go to the chokepoint (``cli.exits``)."""

    async def inside() -> Any:
        database = Database(checked_url(database_url))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(inside())


@group_app.command("set")
def group_set(
    name: Annotated[str, typer.Argument(help="The group's displayName.")],
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="An owner's userName (repeat for more); replaces the owners.")
    ] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why the group exists.")] = None,
    privileged: Annotated[
        bool | None, typer.Option("--privileged/--not-privileged", help="Whether membership grants privileged access.")
    ] = None,
    risk_tier: Annotated[str | None, typer.Option("--risk-tier", help="low, medium, high or critical.")] = None,
    review_every: Annotated[str | None, typer.Option("--review-every", help="Review cadence, e.g. 90d.")] = None,
    membership_expires: Annotated[
        str | None,
        typer.Option("--membership-expires", help="Memberships expire this long after they were granted, e.g. 30d."),
    ] = None,
    actor: Annotated[str | None, typer.Option("--as", help="Who sets it ($SCIMWARD_ACTOR, else your OS user).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a group's owners, purpose, privilege, review cadence and membership expiry (through the gate)."""
    update = GovernanceUpdate(
        owners=owner or None,
        purpose=purpose,
        privileged=privileged,
        risk_tier=risk_tier,
        review_cadence=parse_days(review_every, "--review-every") if review_every else None,
        membership_expires=parse_days(membership_expires, "--membership-expires") if membership_expires else None,
    )
    result = run(database_url, lambda db: set_governance(db, name, update, actor or default_actor()))
    out.print(
        f"Group {escape(result.name)}: owners {escape(', '.join(result.owner_names) or '-')}, "
        f"{'privileged' if result.privileged else 'not privileged'}, review every "
        f"{result.review_cadence or '-'} days, memberships expire after {result.membership_expires or '-'} days."
    )


@group_app.command("list")
def group_list(
    unowned: Annotated[bool, typer.Option("--unowned", help="Only groups without an owner.")] = False,
    privileged: Annotated[bool, typer.Option("--privileged", help="Only privileged groups.")] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Groups with their owners, purpose, privilege, cadence and member count."""
    groups = run(database_url, lambda db: list_groups(db, unowned=unowned, privileged=privileged))
    if as_json:
        print(json.dumps({"groups": [g.to_json() for g in groups]}, indent=2))
        return
    table = Table("group", "members", "owners", "privileged", "review every", "expires after", "purpose")
    for g in groups:
        table.add_row(
            escape(g.name),
            str(g.members),
            escape(", ".join(g.owner_names) or "-"),
            "yes" if g.privileged else "no",
            f"{g.review_cadence}d" if g.review_cadence else "-",
            f"{g.membership_expires}d" if g.membership_expires else "-",
            escape(g.purpose or ""),
        )
    out.print(table)
