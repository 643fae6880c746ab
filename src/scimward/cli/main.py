"""``scimward``: serve the hub, issue tokens, migrate the database."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import secrets
from datetime import timedelta
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from scimward.cli import policy as policy_cli
from scimward.cli import provisioning
from scimward.cli import reconcile as reconcile_cli
from scimward.cli.common import DatabaseUrl, err, fail, migrated
from scimward.cli.demo import load_demo
from scimward.cli.logs import configure_logging
from scimward.cli.targets import target_app
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.errors import NotFound, ScimError
from scimward.scim.resource_types import USER_TYPE
from scimward.store.database import Database
from scimward.store.identities import IdentityStore, SearchQuery
from scimward.store.tokens import SCOPES, TokenStore

app = typer.Typer(help="scimward: a governed SCIM 2.0 identity-lifecycle hub.", no_args_is_help=True)
token_app = typer.Typer(help="Issue, list and revoke the bearer tokens SCIM clients use.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(target_app, name="target")
reconcile_cli.register(app)
policy_cli.register(app)

MIB = 1024 * 1024
SCIM_PREFIX = "/scim/v2"
#: The API is another edge: the CLI starts it by name, never by import (DESIGN.md layers).
ASGI_FACTORY = "scimward.api.app:app_from_env"

def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``45s``."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 90d, 12h, 30m or 45s")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: amount})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: DatabaseUrl = None,
    demo: Annotated[bool, typer.Option("--demo", help="Load a small demo organisation and issue a token.")] = False,
    public_url: Annotated[str | None, typer.Option(help="External SCIM base URL, if behind a proxy.")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted.")] = MIB,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    workers: Annotated[int, typer.Option(min=1, help="API processes (PostgreSQL; SQLite takes 1).")] = 1,
    worker: Annotated[bool, typer.Option("--worker/--no-worker",
                                         help="Push changes to targets from this process too.")] = True,
) -> None:
    """Migrate the database and serve SCIM 2.0 at /scim/v2."""
    configure_logging(log_level)
    url = migrated(database_url)
    token = asyncio.run(_prepare_demo(url)) if demo else None
    scim_base = public_url or f"http://{host}:{port}{SCIM_PREFIX}"
    print(f"SCIM base URL: {scim_base}", flush=True)
    if token:
        print(f"Admin token (shown once): {token}", flush=True)
    os.environ["SCIMWARD_DATABASE_URL"] = url
    os.environ["SCIMWARD_MAX_BODY_BYTES"] = str(max_body_bytes)
    os.environ["SCIMWARD_WORKER"] = "1" if worker else "0"
    if public_url:
        os.environ["SCIMWARD_PUBLIC_URL"] = public_url
    uvicorn.run(ASGI_FACTORY, factory=True, host=host, port=port, workers=workers, access_log=False,
                log_level=log_level, server_header=False)


async def _prepare_demo(url: str) -> str:
    database = Database(url)
    try:
        created = await load_demo(database)
        if created:
            print(f"Loaded the demo organisation: {created} users and their groups.", flush=True)
        return await TokenStore(database).create(f"demo-{secrets.token_hex(3)}", created_by="scimward serve --demo")
    finally:
        await database.dispose()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="A unique name, e.g. okta-prod.")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 90d; default: no expiry.")] = None,
    patch_response: Annotated[str, typer.Option(
        help="How PATCH answers this client: 'resource' (200 with the resource) or 'no_content' (204).")]
        = "resource",
    user: Annotated[str | None, typer.Option(
        help="Bind the token to this userName, so /Me answers as that user.")] = None,
    scope: Annotated[str, typer.Option(
        "--scope", help="'scim' (the SCIM endpoint) or 'admin' (the admin API, and SCIM too).")] = "scim",
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a token. It is printed once, alone on the last line; only its hash is stored."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
        raise fail(f"token name {name!r}: use letters, digits, '.', '_' or '-' (at most 128)")
    if patch_response not in {"resource", "no_content"}:
        raise fail(f"--patch-response must be 'resource' or 'no_content', not {patch_response!r}")
    if scope not in SCOPES:
        raise fail(f"--scope must be {' or '.join(SCOPES)}, not {scope!r}")
    lifetime = parse_duration(expires_in) if expires_in else None
    url = migrated(database_url)
    try:
        token = asyncio.run(_create_token(url, name, lifetime, patch_response, user, scope))
    except ScimError as exc:
        raise fail(exc.detail) from exc
    err.print(f"Token [bold]{name}[/bold] created. Store it now: it is not shown again.")
    print(token)


async def _create_token(url: str, name: str, lifetime: timedelta | None, patch_response: str,
                        user: str | None, scope: str) -> str:
    database = Database(url)
    try:
        user_id = None
        if user is not None:
            found = await IdentityStore(database).search(
                USER_TYPE, SearchQuery(filter=Compare(AttrPath(None, "userName"), "eq", user), count=1))
            if not found.items:
                raise NotFound(f"no user with userName {user!r}")
            user_id = found.items[0].id
        return await TokenStore(database).create(name, created_by=getpass.getuser(), expires_in=lifetime,
                                                 patch_response=patch_response, user_id=user_id, scopes=scope)
    finally:
        await database.dispose()


@token_app.command("list")
def token_list(database_url: DatabaseUrl = None) -> None:
    """List tokens: name, scopes, creator, created, expiry, last use, status."""
    url = migrated(database_url)

    async def run() -> None:
        database = Database(url)
        try:
            infos = await TokenStore(database).list()
        finally:
            await database.dispose()
        table = Table("name", "scopes", "created by", "created", "expires", "last used", "status")
        for info in infos:
            table.add_row(info.name, " ".join(sorted(info.scopes)), info.created_by, f"{info.created:%Y-%m-%d %H:%M}",
                          f"{info.expires:%Y-%m-%d %H:%M}" if info.expires else "never",
                          f"{info.last_used:%Y-%m-%d %H:%M}" if info.last_used else "never", info.status)
        Console().print(table)

    asyncio.run(run())


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")],
                 database_url: DatabaseUrl = None) -> None:
    """Revoke a token; clients using it get 401 within seconds."""
    url = migrated(database_url)

    async def run() -> None:
        database = Database(url)
        try:
            await TokenStore(database).revoke(name)
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except ScimError as exc:
        raise fail(exc.detail) from exc
    err.print(f"Token {name} revoked.")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply all migrations."""
    url = migrated(database_url)
    err.print(f"Database {url} is at the newest schema.")


@app.command("worker")
def worker_command(
    database_url: DatabaseUrl = None,
    concurrency: provisioning.Concurrency = 16,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    lease_seconds: Annotated[float, typer.Option(
        min=1, help="How long a claimed row is this worker's before another may take it (a crash).")] = 120.0,
) -> None:
    """Push changes to targets (outbox rows) until stopped; run several against one PostgreSQL."""
    provisioning.run_worker(migrated(database_url), concurrency, log_level, lease_seconds)


@app.command("sync")
def sync_command(
    name: Annotated[str, typer.Argument(help="The target's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Push everything in a target's scope now, with a progress bar; resumable."""
    url = migrated(database_url)
    try:
        result = asyncio.run(provisioning.full_sync(url, name))
    except ScimError as exc:
        raise fail(exc.detail) from exc
    err.print(f"sync {name}: {result['processed']} pushed, {result['remaining']} left "
              f"({result['retrying']} waiting to retry)")
    if result["remaining"]:
        raise typer.Exit(code=1)
