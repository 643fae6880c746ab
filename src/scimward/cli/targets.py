"""``scimward target ...``: add, change, list, show, test, resume and remove targets.

The credential is never printed. It is best given by environment variable (``--token-env``) or file
(``--token-file``, ``-`` for standard input); ``--token`` works but leaves it in the shell history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from scimward.cli.common import DatabaseUrl, checked_url, default_actor, err, fail, table_console, warn
from scimward.cli.exits import ExitCode
from scimward.store.database import Database
from scimward.sync.secrets import SecretBox
from scimward.sync.target_admin import KNOWN_OPTIONS, TargetAdmin, compose_mapping, is_plain_http, parse_constant
from scimward.sync.targets import AttributeRule, DeprovisionMode, TargetConfig

if TYPE_CHECKING:
    from scimward.policy.plans import Plan

target_app = typer.Typer(help="Targets: the applications scimward provisions over SCIM.", no_args_is_help=True)

T = TypeVar("T")

#: Keys with an option of their own; ``--option`` sets the others (``TargetConfig.extra``).
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(TargetConfig)) | {"push_groups"}

Name = Annotated[str, typer.Argument(help="The target's name, e.g. crm-prod.", show_default=False)]
Url = Annotated[str | None, typer.Option("--url", help="The target's SCIM base URL, e.g. https://crm.example/scim/v2.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", help="The target's bearer token. Lands in shell history: prefer --token-env or --token-file."
    ),
]
TokenEnv = Annotated[
    str | None, typer.Option("--token-env", metavar="VAR", help="Read the bearer token from this environment variable.")
]
TokenFile = Annotated[
    Path | None,
    typer.Option("--token-file", metavar="PATH", help="Read the bearer token from this file ('-': standard input)."),
]
Scope = Annotated[
    str | None,
    typer.Option(
        "--scope",
        metavar="FILTER",
        help="SCIM filter choosing the users the target receives, e.g. 'userType eq \"Employee\" and active eq true'. "
        '"" for every user.',
    ),
]
Groups = Annotated[
    bool | None, typer.Option("--groups/--no-groups", help="Push groups and memberships.", show_default=False)
]
GroupScope = Annotated[
    str | None,
    typer.Option("--group-scope", metavar="FILTER", help='SCIM filter choosing the groups pushed; "" for every group.'),
]
Maps = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="TARGET=SOURCE",
        help="Send hub attribute SOURCE as TARGET, e.g. --map nickName=displayName. Repeatable; replaces the "
        "rule for TARGET in the mapping, or adds one.",
    ),
]
Consts = Annotated[
    list[str] | None,
    typer.Option(
        "--const",
        metavar="TARGET=VALUE",
        help='Send a constant as TARGET: a JSON literal (true, 42, "x") or plain text. Repeatable.',
    ),
]
Drops = Annotated[
    list[str] | None, typer.Option("--drop", metavar="TARGET", help="Stop sending the attribute TARGET. Repeatable.")
]
MapOnly = Annotated[
    bool, typer.Option("--map-only", help="Send only the --map and --const attributes, not the default mapping's.")
]
Deprovision = Annotated[
    DeprovisionMode | None,
    typer.Option(
        "--deprovision",
        case_sensitive=False,
        help="When a user leaves the scope or the hub: deactivate (active=false, the default), delete, or "
        "tombstone (deactivate, delete after --tombstone-days).",
        show_default=False,
    ),
]
TombstoneDays = Annotated[
    int | None,
    typer.Option("--tombstone-days", min=0, metavar="N", help="Grace period before a tombstone deletes (default 30)."),
]
Options = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        metavar="KEY=VALUE",
        help="Any other setting, e.g. --option quarantine_after=5 (VALUE as for --const; null removes it).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Environment = Annotated[
    str | None,
    typer.Option(
        "--environment",
        metavar="ENV",
        help='Where the target runs, e.g. prod or staging ("" for none): an NHI with '
        "accounts in targets of different environments is a finding.",
    ),
]
Nhis = Annotated[
    bool | None, typer.Option("--nhis/--no-nhis", help="Push non-human identities (Agents).", show_default=False)
]
NhiScope = Annotated[
    str | None,
    typer.Option(
        "--nhi-scope", metavar="FILTER", help='SCIM filter over Agents choosing the NHIs pushed; "" for every one.'
    ),
]
NhiUserType = Annotated[
    str | None,
    typer.Option(
        "--nhi-user-type",
        metavar="TYPE",
        help="userType of the Users NHIs become on a target without /Agents (default ServiceAccount).",
    ),
]


@dataclasses.dataclass(frozen=True)
class ConfigOptions:
    """The configuration options as given; None (or empty) where not given."""

    scope: str | None = None
    groups: bool | None = None
    group_scope: str | None = None
    maps: list[str] | None = None
    consts: list[str] | None = None
    drops: list[str] | None = None
    map_only: bool = False
    default_mapping: bool = False
    deprovision: DeprovisionMode | None = None
    tombstone_days: int | None = None
    options: list[str] | None = None
    environment: str | None = None
    nhis: bool | None = None
    nhi_scope: str | None = None
    nhi_user_type: str | None = None

    def given(self) -> bool:
        return any(getattr(self, field.name) not in (None, False, [], ()) for field in dataclasses.fields(self))

    def apply(self, base: TargetConfig) -> TargetConfig:
        """``base`` with the options given applied."""
        changes: dict[str, Any] = {}
        if self.scope is not None:
            changes["scope"] = self.scope.strip() or None
        if self.groups is not None:
            changes["push_groups"] = self.groups
        if self.group_scope is not None:
            changes["group_scope"] = self.group_scope.strip() or None
        if self.deprovision is not None:
            changes["deprovision"] = self.deprovision
        if self.tombstone_days is not None:
            changes["tombstone_days"] = self.tombstone_days
        if self.environment is not None:
            changes["environment"] = self.environment.strip() or None
        if self.nhis is not None:
            changes["push_nhis"] = self.nhis
        if self.nhi_scope is not None:
            changes["nhi_scope"] = self.nhi_scope.strip() or None
        if self.nhi_user_type is not None:
            changes["nhi_user_type"] = self.nhi_user_type.strip() or "ServiceAccount"
        rules = [AttributeRule(*_pair(text, "--map", "TARGET=SOURCE")) for text in self.maps or ()]
        for text in self.consts or ():
            target, value = _pair(text, "--const", "TARGET=VALUE", empty_value=True)
            rules.append(AttributeRule(target, constant=parse_constant(value)))
        start = None if self.default_mapping else base.mapping
        changes["mapping"] = compose_mapping(start, rules, [d.strip() for d in self.drops or ()], only=self.map_only)
        changes["extra"] = _options(base.extra, self.options or ())
        return dataclasses.replace(base, **changes)


def _options(current: dict[str, Any], options: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``current`` with each ``--option KEY=VALUE`` applied (``KEY=null`` removes it)."""
    extra = dict(current)
    for text in options:
        key, value = _pair(text, "--option", "KEY=VALUE", empty_value=True)
        if key in _CONFIG_FIELDS:
            raise fail(f"--option {key}: use the option of its own (scimward target add --help)")
        parsed = parse_constant(value)
        if key not in KNOWN_OPTIONS:  # kept (another tool may read it), but a typo should not pass unseen
            warn(f"--option {key} is not a setting scimward reads ({', '.join(KNOWN_OPTIONS)}); kept as given")
        if parsed is None:
            extra.pop(key, None)
        else:
            extra[key] = parsed
    return extra


def _pair(text: str, option: str, form: str, *, empty_value: bool = False) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    left, right = left.strip(), right.strip()
    if not sep or not left or (not right and not empty_value):
        raise fail(f"{option} {text!r}: write {form}")
    return left, right


def _token(token: str | None, token_env: str | None, token_file: Path | None) -> str | None:
    """The credential from whichever source was given (at most one), else None."""
    if sum(source is not None for source in (token, token_env, token_file)) > 1:
        raise fail("give the token one way only: --token-env, --token-file or --token")
    if token is not None:
        warn(
            "--token leaves the credential in your shell history and the process list; "
            "prefer --token-env VAR or --token-file PATH"
        )
        return token
    if token_env is not None:
        value = os.environ.get(token_env, "")
        if not value.strip():
            raise fail(f"the environment variable {token_env} named by --token-env is not set or empty")
        return value
    if token_file is not None:
        if str(token_file) == "-":
            return sys.stdin.read()
        try:
            return token_file.read_text()
        except OSError as exc:
            raise fail(f"cannot read the token file {token_file}: {exc.strerror or exc}") from exc
    return None


def _run(database_url: str | None, work: Callable[[TargetAdmin], Awaitable[T]]) -> T:
    """Run ``work`` against the database; its errors reach the chokepoint (``cli.exits``)."""
    url = checked_url(database_url)

    async def main() -> T:
        database = Database(url)
        try:
            return await work(TargetAdmin(database, SecretBox()))
        finally:
            await database.dispose()

    return asyncio.run(main())


Actor = Annotated[str | None, typer.Option("--as", help="Who makes the change ($SCIMWARD_ACTOR, else your OS user).")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the plan (accounts to create, update, deprovision); change nothing.")
]


def _print_plan(plan: Plan) -> None:
    err.print(Text(plan.describe()))
    for kind, names in plan.samples.items():
        if names:
            err.print(Text(f"  {kind}, e.g.: {', '.join(names)}"))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


@target_app.command("add")
def target_add(
    name: Name,
    url: Annotated[
        str,
        typer.Option("--url", help="The target's SCIM base URL, e.g. https://crm.example/scim/v2.", show_default=False),
    ],
    token: Token = None,
    token_env: TokenEnv = None,
    token_file: TokenFile = None,
    scope: Scope = None,
    groups: Groups = None,
    group_scope: GroupScope = None,
    maps: Maps = None,
    consts: Consts = None,
    drops: Drops = None,
    map_only: MapOnly = False,
    deprovision: Deprovision = None,
    tombstone_days: TombstoneDays = None,
    options: Options = None,
    environment: Environment = None,
    nhis: Nhis = None,
    nhi_scope: NhiScope = None,
    nhi_user_type: NhiUserType = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a target. Its token is stored encrypted (SCIMWARD_SECRET_KEY, or the key file)."""
    secret = _token(token, token_env, token_file)
    if secret is None:
        if not sys.stdin.isatty():
            raise fail("give the target's bearer token with --token-env VAR or --token-file PATH")
        secret = typer.prompt(f"Bearer token for {name}", hide_input=True, err=True)
    config = ConfigOptions(
        scope,
        groups,
        group_scope,
        maps,
        consts,
        drops,
        map_only,
        False,
        deprovision,
        tombstone_days,
        options,
        environment,
        nhis,
        nhi_scope,
        nhi_user_type,
    ).apply(TargetConfig())
    target = _run(database_url, lambda admin: admin.add(name, url, secret, config, default_actor()))
    if is_plain_http(target.row.base_url):
        warn(f"{target.row.base_url} is plain http: the token crosses the network unencrypted")
    err.print(
        Text(f"Target {target.name} added ({target.row.base_url}). Check it with: scimward target test {target.name}")
    )


@target_app.command("set")
def target_set(
    name: Name,
    url: Url = None,
    token: Token = None,
    token_env: TokenEnv = None,
    token_file: TokenFile = None,
    scope: Scope = None,
    groups: Groups = None,
    group_scope: GroupScope = None,
    maps: Maps = None,
    consts: Consts = None,
    drops: Drops = None,
    map_only: MapOnly = False,
    default_mapping: Annotated[
        bool,
        typer.Option(
            "--default-mapping", help="Go back to the default mapping (then apply any --map, --const, --drop)."
        ),
    ] = False,
    deprovision: Deprovision = None,
    tombstone_days: TombstoneDays = None,
    options: Options = None,
    environment: Environment = None,
    nhis: Nhis = None,
    nhi_scope: NhiScope = None,
    nhi_user_type: NhiUserType = None,
    dry_run: DryRun = False,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a target: what is given changes, the rest stays. A change of what the target holds is planned
    first, and held for a second person's approval if it would deprovision past the breaker (exit 1)."""
    secret = _token(token, token_env, token_file)
    edits = ConfigOptions(
        scope,
        groups,
        group_scope,
        maps,
        consts,
        drops,
        map_only,
        default_mapping,
        deprovision,
        tombstone_days,
        options,
        environment,
        nhis,
        nhi_scope,
        nhi_user_type,
    )
    if url is None and secret is None and not edits.given():
        raise fail("nothing to change: give --url, a token, or configuration options (see --help)")

    if dry_run:

        async def preview(admin: TargetAdmin) -> Plan:
            return await admin.plan(name, edits.apply((await admin.get(name)).config) if edits.given() else None)

        _print_plan(_run(database_url, preview))
        err.print(Text("Dry run: nothing changed."))
        return

    async def change(admin: TargetAdmin) -> str:
        config = edits.apply((await admin.get(name)).config) if edits.given() else None
        target = await admin.update(name, url=url, token=secret, config=config, actor=actor or default_actor())
        return target.row.base_url

    base_url = _run(database_url, change)
    if url is not None and is_plain_http(base_url):
        warn(f"{base_url} is plain http: the token crosses the network unencrypted")
    err.print(Text(f"Target {name} changed."))


@target_app.command("list")
def target_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List targets: status, URL, user scope, pending pushes and links (``show`` tells the rest)."""
    views = _run(database_url, lambda admin: admin.list())
    if as_json:
        _print_json(views)
        return
    table = Table()
    for column in ("name", "status", "url", "scope"):
        table.add_column(column, overflow="fold")
    for column in ("pending", "links"):
        table.add_column(column, justify="right", no_wrap=True)
    for view in views:
        table.add_row(
            *(
                Text(str(cell))
                for cell in (
                    view["name"],
                    view["status"],
                    view["url"],
                    view["config"].get("scope") or "every user",
                    view["outbox"]["pending"],
                    sum(view["links"].values()),
                )
            )
        )
    table_console().print(table)


@target_app.command("show")
def target_show(name: Name, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Show a target's configuration and health (never its token)."""
    view = _run(database_url, lambda admin: admin.show(name))
    if as_json:
        _print_json(view)
        return
    config = view["config"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")  # fold, never truncate: a cut filter or URN would mislead
    rows: list[tuple[str, str]] = [
        ("name", view["name"]),
        ("url", view["url"]),
        ("created", view["created"]),
        (
            "status",
            view["status"]
            if view["quarantine"] is None
            else f"quarantined since {view['quarantine']['since']}: {view['quarantine']['reason']}",
        ),
        ("scope", config.get("scope") or "every user"),
        ("groups", _groups(config)),
        ("mapping", _mapping(config.get("mapping"))),
        ("deprovision", _deprovision(config)),
        ("outbox", f"{view['outbox']['pending']} pending, {view['outbox']['failing']} failing"),
        ("links", ", ".join(f"{status} {count}" for status, count in view["links"].items()) or "none"),
    ]
    extra = {k: v for k, v in config.items() if k not in _CONFIG_FIELDS}
    if extra:
        rows.append(("options", ", ".join(f"{k}={json.dumps(v)}" for k, v in extra.items())))
    if view["last_error"]:
        rows.append(("last error", f"{view['last_error']['at']}: {view['last_error']['message']}"))
    for label, value in rows:
        grid.add_row(label, Text(value))
    table_console().print(grid)


def _groups(config: dict[str, Any]) -> str:
    if not config.get("push_groups", True):
        return "not pushed"
    return f"pushed: {config['group_scope']}" if config.get("group_scope") else "pushed: every group"


def _deprovision(config: dict[str, Any]) -> str:
    mode = config.get("deprovision", "deactivate")
    return f"tombstone ({config.get('tombstone_days', 30)} days)" if mode == "tombstone" else str(mode)


def _mapping(rules: list[dict[str, Any]] | None) -> str:
    if rules is None:
        return "default (the core User schema and the enterprise extension)"
    shown = [
        r["target"]
        if r.get("source") == r["target"]
        else f"{r['target']} <- {r['source']}"
        if "source" in r
        else f"{r['target']} = {json.dumps(r['constant'])}"
        for r in rules
    ]
    return "\n".join(shown) or "nothing (no attributes are sent)"


@target_app.command("remove")
def target_remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: DryRun = False,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a target with its outbox and links. Its accounts in the application stay as they are. A target
    with more accounts than the breaker's threshold is removed only with a second person's approval."""
    if dry_run:
        _print_plan(_run(database_url, lambda admin: admin.plan(name, None)))
        err.print(Text("Dry run: nothing changed."))
        return
    if not yes:
        view = _run(database_url, lambda admin: admin.show(name))
        if not sys.stdin.isatty():
            raise fail(f"removing target {name} needs confirmation: add --yes")
        links = sum(view["links"].values())
        typer.confirm(
            f"Remove target {name}? Its {links} links and {view['outbox']['pending']} pending pushes are "
            "forgotten; its accounts stay in the application.",
            abort=True,
            err=True,
        )
    _run(database_url, lambda admin: admin.remove(name, actor or default_actor()))
    err.print(Text(f"Target {name} removed."))


@target_app.command("test")
def target_test(name: Name, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Read the target's ServiceProviderConfig and try its token; exit 1 if the token is refused, 4 if the
    target is unreachable or fails otherwise."""
    report = _run(database_url, lambda admin: admin.test(name))
    if as_json:
        _print_json(report)
    else:
        _print_report(report)
    if not report["ok"]:
        # 1 is for what the admin fixes with a token; a wrong URL (404) or a server down is the target's.
        raise typer.Exit(code=ExitCode.ATTENTION if report.get("credential") == "rejected" else ExitCode.TARGET)


def _print_report(report: dict[str, Any]) -> None:
    console = Console(highlight=False, soft_wrap=True)
    verdict = "[green]ok[/green]" if report["ok"] else "[red]FAILED[/red]"
    console.print(Text.assemble(f"Target {report['target']} at {report['url']}: "), Text.from_markup(verdict))
    for check in report["checks"]:
        if check["ok"]:
            evaluated = check.get("evaluated")
            outcome = (
                "ok"
                if evaluated is None
                else "evaluates "
                + (
                    ", ".join(
                        f"{lookup} {'yes' if works else 'unknown' if works is None else 'no (answers an empty list)'}"
                        for lookup, works in evaluated.items()
                    )
                )
            )
        else:
            status = f" {check['status']}" if check["status"] is not None else ""
            outcome = f"{check['error']}{status}: {check['detail']}"
        console.print(Text(f"  {check['check']:<24} {outcome}"))
    supports = report["supports"]
    if supports:

        def yes(flag: bool) -> str:
            return "yes" if flag else "no"

        paging = "+".join(kind for kind in ("cursor", "index") if supports["pagination"][kind]) or "none"
        bulk = yes(supports["bulk"]) + (
            f" (max {supports['bulk_max_operations']} operations)"
            if supports["bulk"] and supports["bulk_max_operations"]
            else ""
        )
        console.print(
            Text(
                f"  supports: PATCH {yes(supports['patch'])}, Bulk {bulk}, filter {yes(supports['filter'])}, "
                f"sort {yes(supports['sort'])}, ETag {yes(supports['etag'])}, "
                f"changePassword {yes(supports['change_password'])}, paging {paging}"
            )
        )
    if report["authentication_schemes"]:
        console.print(Text(f"  authentication: {', '.join(report['authentication_schemes'])}"))
    console.print(Text(f"  took {report['elapsed_ms']} ms"))


@target_app.command("resume")
def target_resume(name: Name, database_url: DatabaseUrl = None) -> None:
    """Lift a target's quarantine: it receives again, starting with what it missed."""
    view = _run(database_url, lambda admin: admin.resume(name))
    err.print(Text(f"Target {name} resumed; {view['outbox']['pending']} pushes waiting."))


@target_app.command("status")
def target_status(name: Name, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Linked, pending, retrying and failed counts, quarantine, last error, latency p50/p99."""
    from scimward.cli import provisioning  # the worker's machinery: only this command needs it

    status = asyncio.run(provisioning.target_status(checked_url(database_url), name))
    provisioning.print_status(status, as_json)
