"""``scimward``: the command line.

Commands are registered below, one line each, by module path: ``scimward --help`` lists them
without importing any, and a command imports what it needs only when it runs (``cli.lazy``).
Every command runs inside one chokepoint (``cli.exits``) that turns the project's errors into one
line on stderr and the exit code their class decides; a command only raises them. To add one::

    "policy": LazyCommand("scimward.cli.policy:policy_app", "Rules that gate every change."),

where the target is a ``typer.Typer`` (a command group) or a function (one command), and the line
is its help's first line (``tests/test_cli_speed.py`` checks that they agree).
"""

from __future__ import annotations

from typing import Annotated

import typer

from scimward.cli.exits import DEBUG_ENV
from scimward.cli.lazy import LazyCommand, lazy_group

COMMANDS = {
    "serve": LazyCommand("scimward.cli.serve:serve", "Migrate the database and serve SCIM 2.0 at /scim/v2."),
    "token": LazyCommand("scimward.cli.tokens:token_app", "Issue, list and revoke the bearer tokens SCIM clients use."),
    "db": LazyCommand("scimward.cli.database:db_app", "Database maintenance."),
    "target": LazyCommand(
        "scimward.cli.targets:target_app", "Targets: the applications scimward provisions over SCIM."
    ),
    "worker": LazyCommand(
        "scimward.cli.provisioning:worker_command",
        "Push changes to targets (outbox rows) until stopped; run several against one PostgreSQL.",
    ),
    "sync": LazyCommand(
        "scimward.cli.provisioning:sync_command",
        "Push everything in a target's scope now, with a progress bar; resumable.",
    ),
    "reconcile": LazyCommand(
        "scimward.cli.reconcile:reconcile_command",
        "Read a target's Users and Groups back and report the drift from what it should hold.",
    ),
    "findings": LazyCommand(
        "scimward.cli.reconcile:findings_app",
        "List findings: drift, gate, governance; by framework control, owner, status.",
    ),
    "report": LazyCommand(
        "scimward.cli.report:report_command",
        "The evidence report: coverage, propagation risk, findings per control, audit status.",
    ),
    "policy": LazyCommand(
        "scimward.cli.policy:policy_app", "Show and apply the policy: rules, approvals and the mass-change breaker."
    ),
    "changes": LazyCommand(
        "scimward.cli.policy:changes_app", "List, show, approve and reject changes (held changes need a second person)."
    ),
    "breaker": LazyCommand(
        "scimward.cli.policy:breaker_app", "The mass-change breaker of each target: status, release, discard."
    ),
    "blast-radius": LazyCommand(
        "scimward.cli.policy:blast_radius_command",
        "What an identity drives downstream: accounts and entitlements per target.",
    ),
    "group": LazyCommand(
        "scimward.cli.groups:group_app",
        "Group governance: owners, purpose, privilege, review cadence, membership expiry.",
    ),
    "review": LazyCommand(
        "scimward.cli.reviews:review_app",
        "Access reviews: campaigns over groups or a target; revokes remove the access.",
    ),
    "source": LazyCommand(
        "scimward.cli.sources:source_app", "Sources: where identities' truth comes from (an IdP over SCIM, HR exports)."
    ),
    "import": LazyCommand(
        "scimward.cli.sources:import_command",
        "Import an HR export: each row a change through the gate; bad rows are reported by line, exit 1.",
    ),
    "admin": LazyCommand(
        "scimward.cli.admin:admin_app", "The console's local break-glass administrators: create, list, disable."
    ),
    "audit": LazyCommand(
        "scimward.cli.audit:audit_app", "The audit trail: verify its hash chain, export it, print its head."
    ),
    "nhi": LazyCommand("scimward.cli.nhi:nhi_app", "Non-human identities: owners, expiry, rotation, retirement."),
}

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help="scimward: a governed SCIM 2.0 identity-lifecycle hub.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        print(f"scimward {version('scimward')}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", envvar=DEBUG_ENV, help="On an error, show the traceback too.")
    ] = False,
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print scimward's version and exit.")
    ] = False,
) -> None:
    """scimward: a governed SCIM 2.0 identity-lifecycle hub. Exit codes: docs/cli.md."""


def main() -> None:
    app()
