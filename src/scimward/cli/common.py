"""What every command group shares: the database option, failing with one clear line, migrating first.

They live here, not in ``cli.main``, because the sub-apps ``cli.main`` registers import them.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from scimward.store.db import DatabaseUrlError, resolve_url, upgrade

err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="SCIMWARD_DATABASE_URL",
                 help="sqlite:///FILE (default sqlite:///scimward.db) or postgresql+psycopg://USER@HOST/DB"),
]


def default_actor() -> str:
    """Who a command acts as when ``--as`` is not given: ``$SCIMWARD_ACTOR``, else the OS user."""
    return os.environ.get("SCIMWARD_ACTOR") or getpass.getuser()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line saying what is wrong; raise the returned ``Exit``."""
    # Escaped: messages quote filters and paths, whose brackets Rich would read as markup.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def migrated(database_url: str | None) -> str:
    """The database URL to use, after bringing its schema up to date."""
    url = resolve_url(database_url)
    try:
        upgrade(url)
    except DatabaseUrlError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # the driver's own error: unreachable server, bad credentials
        raise fail(f"cannot open the database {url!r}: {exc}") from exc
    return url
