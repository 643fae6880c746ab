"""``scimward db ...``: database maintenance."""

from __future__ import annotations

import typer

from scimward.cli.common import DatabaseUrl, err
from scimward.store.database import resolve_url, shown_url, upgrade

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply all migrations (the other commands only check that they were applied)."""
    url = resolve_url(database_url)
    upgrade(url)
    err.print(f"Database {shown_url(url)} is at the newest schema.", highlight=False)
