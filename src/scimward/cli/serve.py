"""``scimward serve``: migrate the database, then serve SCIM, the admin API, health and metrics.

Its options are not written out here: one per field of ``scimward.settings.Settings``, each with
that field's environment variable, so the command line, the environment and docs/configuration.md
say the same thing. The API processes read the settings back from the environment
(``api.app.app_from_env``), which is how uvicorn's worker processes get them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer

from scimward import settings as model
from scimward.cli.common import err, fail
from scimward.settings import Settings, SettingsError

SCIM_PREFIX = "/scim/v2"
#: The API is another edge: the CLI starts it by name, never by import (DESIGN.md layers).
ASGI_FACTORY = "scimward.api.app:app_from_env"
DEMO_TOKEN = "demo-admin"
DEMO_TOKEN_LIFETIME = timedelta(days=7)


def serve_command(demo: bool = False, **values: Any) -> None:
    """Migrate the database and serve SCIM 2.0 at /scim/v2."""
    try:
        settings = Settings(**values)
    except SettingsError as exc:
        raise fail(str(exc)) from exc
    run(settings, demo=demo)


def run(settings: Settings, *, demo: bool) -> None:
    import uvicorn

    from scimward.cli.logs import configure_logging, library_level, uvicorn_config
    from scimward.store.database import async_url, shown_url, upgrade

    if settings.workers > 1 and async_url(settings.database_url).get_backend_name() == "sqlite":
        raise fail(
            f"--workers {settings.workers} needs PostgreSQL: SQLite takes one process (it has one writer, "
            "and each process would run its own propagate worker); use --workers 1, or "
            "postgresql+psycopg://... (docs/deployment.md)"
        )
    configure_logging(settings.log_level, settings.log_format)
    upgrade(settings.database_url)
    if settings.log_format == "json":  # stderr carries the logs: every line of it JSON (issue 12, item 13)
        import structlog

        structlog.get_logger("scimward.serve").info(
            "the database is at the newest schema", database=shown_url(settings.database_url)
        )
    else:
        err.print(f"Database {shown_url(settings.database_url)} is at the newest schema.", highlight=False)
    token = asyncio.run(_prepare_demo(settings.database_url)) if demo else None
    print(f"SCIM base URL: {settings.public_url or f'http://{settings.host}:{settings.port}{SCIM_PREFIX}'}", flush=True)
    if token:
        print(f"Admin token (admin scope, expires in {DEMO_TOKEN_LIFETIME.days} days, shown once): {token}", flush=True)
    os.environ.update(settings.to_env())
    uvicorn.run(
        ASGI_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=uvicorn_config(settings.log_level, settings.log_format),
        log_level=library_level(settings.log_level),
        server_header=False,
    )


async def _prepare_demo(url: str) -> str:
    """Load the demo organisation into an empty hub and issue its admin token, replacing the last run's."""
    from scimward.cli.demo import load_demo
    from scimward.store.auth import TokenStore
    from scimward.store.database import Database

    database = Database(url)
    try:
        created = await load_demo(database)
        if created:
            print(f"Loaded the demo organisation: {created} users and their groups.", flush=True)
        return await TokenStore(database).create(
            DEMO_TOKEN, created_by="scimward serve --demo", scopes="admin", expires_in=DEMO_TOKEN_LIFETIME, replace=True
        )
    finally:
        await database.dispose()


def _option(item: dataclasses.Field[Any], meta: model.Meta) -> inspect.Parameter:
    assert meta.flag is not None
    kind = model.value_type(item)
    declared: Any = kind if item.default is not None else kind | None
    flag = f"{meta.flag}/--no-{meta.flag.removeprefix('--')}" if kind is bool else meta.flag
    choices = f" One of: {', '.join(meta.choices)}." if meta.choices else ""
    option = typer.Option(flag, envvar=meta.env, help=_plain(meta.help) + "." + choices, show_envvar=True)
    return inspect.Parameter(
        item.name, inspect.Parameter.KEYWORD_ONLY, default=item.default, annotation=Annotated[declared, option]
    )


def _plain(text: str) -> str:
    """Help from the documentation's line: Markdown's backticks read as noise in a terminal."""
    return text.replace("`", "")


def build_command() -> Callable[..., None]:
    """``serve_command`` with one option per setting that has a flag, and ``--demo``."""
    demo = inspect.Parameter(
        "demo",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--demo",
                help="Load a small demo organisation into an empty hub and issue an admin "
                "token (it expires in 7 days; a rerun replaces it).",
            ),
        ],
    )
    parameters = [_option(item, meta) for item, meta in model.fields() if meta.flag is not None]

    def serve(**values: Any) -> None:
        serve_command(**values)

    serve.__doc__ = serve_command.__doc__
    serve.__signature__ = inspect.Signature([demo, *parameters])  # type: ignore[attr-defined]
    return serve


serve = build_command()
