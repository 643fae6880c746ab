"""``scimward admin ...``: the console's local break-glass administrators."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, default_actor, err, fail, table_console
from scimward.store.auth import ROLES, ConsoleAccounts
from scimward.store.database import Database

admin_app = typer.Typer(
    help="The console's local break-glass administrators: create, list, disable.", no_args_is_help=True
)

T = TypeVar("T")


def _run(url: str, work: Callable[[ConsoleAccounts], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(url)
        try:
            return await work(ConsoleAccounts(database))
        finally:
            await database.dispose()

    return asyncio.run(run())


@admin_app.command("create")
def admin_create(
    name: Annotated[str, typer.Argument(help="The administrator's name, e.g. break-glass.")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")] = "admin",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a local administrator; its one-time password is printed alone on the last line."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}", name):
        raise fail(f"administrator name {name!r}: use letters, digits, '.', '_', '@' or '-' (at most 128)")
    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    url = checked_url(database_url)
    password = _run(url, lambda accounts: accounts.create(name, role, default_actor()))
    err.print(
        f"Console administrator [bold]{name}[/bold] ({role}) created. Store the password now: it is not shown again."
    )
    print(password)


@admin_app.command("list")
def admin_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List local administrators: name, role, creator, created, disabled."""
    url = checked_url(database_url)
    rows = _run(url, lambda accounts: accounts.list())
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "role": r.role,
                        "created_by": r.created_by,
                        "created": r.created.isoformat() + "Z",
                        "disabled": r.disabled.isoformat() + "Z" if r.disabled else None,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    table = Table("name", "role", "created by", "created", "status")
    for row in rows:
        table.add_row(
            row.name,
            row.role,
            row.created_by,
            f"{row.created:%Y-%m-%d %H:%M}",
            "disabled" if row.disabled else "active",
        )
    table_console().print(table)


@admin_app.command("disable")
def admin_disable(
    name: Annotated[str, typer.Argument(help="The administrator's name.")], database_url: DatabaseUrl = None
) -> None:
    """Disable a local administrator: it cannot sign in, and its open sessions end now."""
    url = checked_url(database_url)
    _run(url, lambda accounts: accounts.disable(name))
    err.print(f"Console administrator {name} disabled; its sessions are revoked.")
