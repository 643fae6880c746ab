"""``scimward nhi ...``: non-human identities under the lifecycle (docs/non-human-identities.md).

Every change is a change through the gate (source ``cli``, actor ``--as``, else ``$SCIMWARD_ACTOR``,
else your OS user), so policy rules, approvals and the breaker apply as to any other source.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from scimward.cli.common import AsJson, DatabaseUrl, checked_url, default_actor, err, table_console
from scimward.durations import parse_duration
from scimward.governance.nhi import user_types
from scimward.governance.nhi.registry import NhiView, Registry
from scimward.settings import Settings
from scimward.store.database import Database
from scimward.sync.nhi_adopt import find_account

nhi_app = typer.Typer(help="Non-human identities: owners, expiry, rotation, retirement.", no_args_is_help=True)
Name = Annotated[
    str, typer.Argument(help="The NHI's name (an Agent's name, a service account's userName, a hub token's name).")
]
Actor = Annotated[str | None, typer.Option("--as", help="Who makes the change ($SCIMWARD_ACTOR, else your OS user).")]


def _run(database_url: str | None, work: Callable[[Registry], Awaitable[Any]]) -> Any:
    async def inside() -> Any:
        database = Database(checked_url(database_url))
        try:
            return await work(Registry(database, user_types(Settings.from_env().nhi_user_types)))
        finally:
            await database.dispose()

    return asyncio.run(inside())


def _duration(text: str | None, option: str) -> timedelta | None:
    if text is None:
        return None
    return parse_duration(text, option)


def _when(view: NhiView) -> str:
    return f"{view.expires:%Y-%m-%d}" if view.expires else "never"


def _print(view: NhiView) -> None:
    state = "held for approval (scimward changes list)" if view.pending else "active" if view.active else "disabled"
    orphan = " (no owner left)" if view.orphaned else ""
    err.print(
        f"{escape(view.kind)} [bold]{escape(view.name)}[/bold]: {state}, owners "
        f"{escape(', '.join(view.owners) or '-')}{orphan}, expires {_when(view)}"
    )


@nhi_app.command("add")
def nhi_add(
    name: Name,
    kind: Annotated[
        str, typer.Option("--kind", help="service_account, api_key, token, certificate, bot, workload or ai_agent.")
    ],
    owner: Annotated[list[str], typer.Option("--owner", help="An owner's userName (repeat for co-owners).")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why it exists.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime from now, e.g. 90d.")] = None,
    environment: Annotated[str | None, typer.Option("--environment", help="Where it runs, e.g. prod.")] = None,
    actor: Actor = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Register an NHI (an Agent with scimward's NHI extension), through the gate."""
    lifetime = _duration(expires, "--expires")
    view = _run(
        database_url,
        lambda r: r.add(
            name,
            kind,
            owner,
            purpose=purpose,
            expires_in=lifetime,
            environment=environment,
            actor=actor or default_actor(),
        ),
    )
    if as_json:
        print(json.dumps(view.to_json(), indent=2))
    else:
        _print(view)


@nhi_app.command("list")
def nhi_list(
    owner: Annotated[str | None, typer.Option("--owner", help="Only those this userName owns.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    expiring: Annotated[str | None, typer.Option("--expiring", help="Only those expiring within, e.g. 30d.")] = None,
    orphaned: Annotated[bool, typer.Option("--orphaned", help="Only those without an owner left.")] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Every NHI: Agents, service-account Users and owned hub tokens."""
    within = _duration(expiring, "--expiring")
    views = _run(database_url, lambda r: r.query(owner=owner, kind=kind, expiring=within, orphaned=orphaned))
    if as_json:
        print(json.dumps([v.to_json() for v in views], indent=2))
        return
    table = Table("name", "kind", "owners", "active", "expires", "environment", "purpose")
    for column in table.columns:
        column.overflow = "fold"
    for v in views:
        owners = ", ".join(v.owners) or "-"
        table.add_row(
            escape(v.name),
            v.kind,
            escape(owners + (" (gone)" if v.orphaned and v.owners else "")),
            "yes" if v.active else "no",
            _when(v),
            escape(v.environment or "-"),
            escape(v.purpose or "-"),
        )
    table_console().print(table)


@nhi_app.command("show")
def nhi_show(name: Name, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """One NHI: kind, owners, state, expiry, purpose, environment, credential metadata (never the secret)."""
    view = _run(database_url, lambda r: r.find(name))
    if as_json:
        print(json.dumps(view.to_json(), indent=2))
        return
    out = table_console()
    for label, value in (
        ("name", view.name),
        ("kind", view.kind),
        ("resource", view.resource_type),
        ("owners", ", ".join(view.owners) or "-"),
        ("active", "yes" if view.active else "no"),
        ("orphaned", "yes" if view.orphaned else "no"),
        ("expires", _when(view)),
        ("purpose", view.purpose or "-"),
        ("environment", view.environment or "-"),
    ):
        out.print(f"{label:12} {escape(str(value))}")
    for credential in view.credentials:
        out.print("credential   " + escape(", ".join(f"{k}={v}" for k, v in sorted(credential.items()))))


@nhi_app.command("transfer")
def nhi_transfer(
    name: Name,
    to: Annotated[str, typer.Option("--to", help="The new owner's userName.")],
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give an NHI a new owner (accepts a leaver's NHI), through the gate."""
    _print(_run(database_url, lambda r: r.transfer(name, to, actor or default_actor())))


@nhi_app.command("rotate")
def nhi_rotate(
    name: Name,
    overlap: Annotated[str, typer.Option("--overlap", help="How long a rotated hub token keeps working.")] = "1h",
    credential: Annotated[str | None, typer.Option("--credential", help="Which credential (its identifier).")] = None,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Record a rotation. A hub token gets a successor, printed once on the last line; the old one
    stops working after the overlap."""
    window = _duration(overlap, "--overlap")
    assert window is not None
    view, token = _run(
        database_url, lambda r: r.rotate(name, actor or default_actor(), overlap=window, identifier=credential)
    )
    _print(view)
    if token is not None:
        err.print(
            f"Token [bold]{escape(view.name)}[/bold] issued; the old one works for {overlap} more. "
            "Store it now: it is not shown again."
        )
        print(token)


@nhi_app.command("attest")
def nhi_attest(name: Name, actor: Actor = None, database_url: DatabaseUrl = None) -> None:
    """Attest an NHI (still needed, as it is): records the review, through the gate; closes the
    attestation and review findings."""
    _print(_run(database_url, lambda r: r.attest(name, actor or default_actor())))


@nhi_app.command("retire")
def nhi_retire(name: Name, actor: Actor = None, database_url: DatabaseUrl = None) -> None:
    """Retire an NHI: deleted through the gate, so every target deprovisions it (a hub token is revoked)."""
    view = _run(database_url, lambda r: r.retire(name, actor or default_actor()))
    err.print(f"{escape(view.kind)} {escape(view.name)} retired.")


@nhi_app.command("unmanaged")
def nhi_unmanaged(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Orphaned accounts reconcile found that look non-human (userType, SCIMWARD_NHI_NAME_PATTERNS):
    candidates for ``nhi adopt``."""
    patterns = Settings.from_env().nhi_name_patterns
    found = _run(database_url, lambda r: r.unmanaged(patterns))
    if as_json:
        print(json.dumps(found, indent=2))
        return
    table = Table("target", "account", "why", "adopt with")
    for column in table.columns:
        column.overflow = "fold"
    for item in found:
        table.add_row(escape(str(item["target"])), escape(item["account"]), escape(item["why"]), escape(item["adopt"]))
    table_console().print(table)


@nhi_app.command("adopt")
def nhi_adopt(
    target: Annotated[str, typer.Argument(help="The target holding the account.")],
    account: Annotated[str, typer.Argument(help="The account's name (userName, or an Agent's name) or id there.")],
    owner: Annotated[list[str], typer.Option("--owner", help="An owner's userName (repeat for co-owners).")],
    kind: Annotated[
        str, typer.Option("--kind", help="service_account, api_key, token, certificate, bot, workload or ai_agent.")
    ],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Why it exists.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime from now, e.g. 90d.")] = None,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Bring an unmanaged account of a target under management: an NHI of the hub, linked to that
    account on the next push (found by its name, never created twice)."""
    lifetime = _duration(expires, "--expires")

    async def work(registry: Registry) -> NhiView:
        found = await find_account(registry.db, target, account)
        return await registry.add(
            found.name,
            kind,
            owner,
            purpose=purpose,
            expires_in=lifetime,
            environment=found.environment,
            actor=actor or default_actor(),
        )

    view = _run(database_url, work)
    _print(view)
    err.print(f"It is linked to its account in {escape(target)} on the next push (the worker, or scimward sync).")
