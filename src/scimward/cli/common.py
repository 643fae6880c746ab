"""What every command shares: the database option, failing with one clear line, the schema check.

They live here, not in ``cli.main``, because the command modules ``cli.main`` registers import them.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from scimward.cli.exits import CommandError, ExitCode
from scimward.store.database import DATABASE_URL_ENV, resolve_url, shown_url
from scimward.store.schema_version import check_schema

err = Console(stderr=True, soft_wrap=True)  # a message is one line, whatever the width: it may be copied

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SCIMWARD_DATABASE_URL",
        help="sqlite:///FILE (default sqlite:///scimward.db) or postgresql+psycopg://USER@HOST/DB",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def default_actor() -> str:
    """Who a command acts as when ``--as`` is not given: ``$SCIMWARD_ACTOR``, else the OS user."""
    return os.environ.get("SCIMWARD_ACTOR") or getpass.getuser()


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> CommandError:
    """The error for ``raise``: the chokepoint (``cli.exits``) prints it as one line and exits with ``code``."""
    return CommandError(message, code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def table_console() -> Console:
    """Where tables go: stdout, as wide as a terminal, and never narrower than its content elsewhere.

    Rich assumes 80 columns when stdout is a pipe, and would cut names to fit; a script reading a
    table (or a person reading a CI log) needs them whole.
    """
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=500)
    return console


def checked_url(database_url: str | None) -> str:
    """The database URL to use, after checking that its schema is the one this scimward expects.

    Nothing is migrated here (``scimward db upgrade``, ``serve`` and the demo do that), except that a
    database without any table is given the schema on first use. The URL becomes this process's
    ``SCIMWARD_DATABASE_URL``, so everything it starts, and the key file beside a SQLite database,
    agree on it.
    """
    url = resolve_url(database_url)
    if check_schema(url):
        err.print(f"Created the scimward schema in {escape(shown_url(url))}.", highlight=False)
    os.environ[DATABASE_URL_ENV] = url
    return url


#: Commands written before ``checked_url`` call it by its old name; it no longer migrates.
migrated = checked_url
