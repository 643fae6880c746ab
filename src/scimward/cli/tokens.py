"""``scimward token ...``: issue, list and revoke the bearer tokens SCIM clients and admins use."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, default_actor, err, fail, table_console
from scimward.durations import parse_duration
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.errors import NotFound
from scimward.scim.resource_types import USER_TYPE
from scimward.store.auth import SCOPES, TokenInfo, TokenStore
from scimward.store.database import Database
from scimward.store.governance import SourceRepository
from scimward.store.identity import IdentityStore, SearchQuery

token_app = typer.Typer(help="Issue, list and revoke the bearer tokens SCIM clients use.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="A unique name, e.g. okta-prod.")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 90d; default: no expiry.")] = None,
    patch_response: Annotated[
        str,
        typer.Option(help="How PATCH answers this client: 'resource' (200 with the resource) or 'no_content' (204)."),
    ] = "resource",
    user: Annotated[
        str | None, typer.Option(help="Bind the token to this userName, so /Me answers as that user.")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            help="The userName of the person accountable for the token: it stops working when they leave "
            "(hub tokens are non-human identities, docs/non-human-identities.md)."
        ),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="'scim' (the SCIM endpoint), 'admin' (the admin API, SCIM and /metrics) or 'metrics' "
            "(only /metrics, for a Prometheus scraper).",
        ),
    ] = "scim",
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="The scim source (scimward source add) whose client holds the token: its changes carry scim:SOURCE.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a token. It is printed once, alone on the last line; only its hash is stored."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
        raise fail(f"token name {name!r}: use letters, digits, '.', '_' or '-' (at most 128)")
    if patch_response not in {"resource", "no_content"}:
        raise fail(f"--patch-response must be 'resource' or 'no_content', not {patch_response!r}")
    if scope not in SCOPES:
        raise fail(f"--scope must be {', '.join(SCOPES)}, not {scope!r}")
    lifetime = parse_duration(expires_in, "--expires-in") if expires_in else None
    url = checked_url(database_url)
    token = asyncio.run(_create_token(url, name, lifetime, patch_response, user, scope, source, owner))
    err.print(f"Token [bold]{name}[/bold] created. Store it now: it is not shown again.")
    print(token)


async def user_id_of(database: Database, user_name: str) -> str:
    found = await IdentityStore(database).search(
        USER_TYPE, SearchQuery(filter=Compare(AttrPath(None, "userName"), "eq", user_name), count=1)
    )
    if not found.items:
        raise NotFound(f"no user with userName {user_name!r}")
    return found.items[0].id


async def _create_token(
    url: str,
    name: str,
    lifetime: timedelta | None,
    patch_response: str,
    user: str | None,
    scope: str,
    source: str | None = None,
    owner: str | None = None,
) -> str:
    database = Database(url)
    try:
        if source is not None:
            await SourceRepository(database).check_scim(source)
        user_id = await user_id_of(database, user) if user is not None else None
        owner_id = await user_id_of(database, owner) if owner is not None else None
        return await TokenStore(database).create(
            name,
            created_by=getpass.getuser(),
            expires_in=lifetime,
            patch_response=patch_response,
            user_id=user_id,
            scopes=scope,
            source=source,
            owner_id=owner_id,
        )
    finally:
        await database.dispose()


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def token_json(info: TokenInfo, user_name: str | None) -> dict[str, Any]:
    return {
        "name": info.name,
        "scopes": sorted(info.scopes),
        "created_by": info.created_by,
        "created": _iso(info.created),
        "expires": _iso(info.expires),
        "last_used": _iso(info.last_used),
        "revoked": _iso(info.revoked),
        "status": info.status,
        "user_id": info.user_id,
        "user_name": user_name,
        "patch_response": info.patch_response,
        "source": info.source,
        "owner_id": info.owner_id,
    }


@token_app.command("list")
def token_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List tokens: name, scopes, bound user, creator, created, expiry, last use, status."""
    url = checked_url(database_url)

    async def run() -> list[tuple[TokenInfo, str | None]]:
        database = Database(url)
        try:
            infos = await TokenStore(database).list()
            identities = IdentityStore(database)
            names: dict[str, str | None] = {}
            for user_id in {info.user_id for info in infos if info.user_id}:
                try:
                    names[user_id] = (await identities.get(USER_TYPE, user_id, with_groups=False)).doc.get("userName")
                except NotFound:
                    names[user_id] = None  # the user was deleted; the token no longer answers /Me
            return [(info, names.get(info.user_id) if info.user_id else None) for info in infos]
        finally:
            await database.dispose()

    rows = asyncio.run(run())
    if as_json:
        print(json.dumps([token_json(info, user_name) for info, user_name in rows], indent=2))
        return
    table = Table("name", "scopes", "user", "created by", "created", "expires", "last used", "status")
    for column in table.columns:
        column.overflow = "fold"  # never cut a name: it is what `token revoke` takes
    for info, user_name in rows:
        user = user_name or (f"deleted user {info.user_id}" if info.user_id else "-")
        table.add_row(
            info.name,
            " ".join(sorted(info.scopes)),
            user,
            info.created_by,
            _when(info.created),
            _when(info.expires),
            _when(info.last_used),
            info.status,
        )
    table_console().print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], database_url: DatabaseUrl = None
) -> None:
    """Revoke a token; clients using it get 401 within seconds."""
    url = checked_url(database_url)

    async def run() -> None:
        database = Database(url)
        try:
            await TokenStore(database).revoke(name, by=default_actor())
        finally:
            await database.dispose()

    asyncio.run(run())
    err.print(f"Token {name} revoked.")
