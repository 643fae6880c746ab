"""Exit codes, and the one chokepoint that turns the project's errors into one line and a code.

Every command runs inside ``ChokepointGroup.invoke``. A command that cannot do its work raises the
project's own error (a ``ScimwardError``: ``scimward/errors.py`` draws the tree, with ``CommandError``
for what only the command line knows); the chokepoint prints
``error: <what is wrong>`` on stderr, with any database password hidden, and exits with the code the
error's class decides. No command handles them itself, and none prints a traceback for them;
``--debug`` (or ``SCIMWARD_DEBUG=1``) shows the traceback as well. An error nobody expected (a bug)
is one line too, naming ``--debug``, with exit code 70.

The codes (docs/cli.md)::

    0    OK         done: the target is in sync, everything was pushed, the repair left nothing open
    1    ATTENTION  the command ran and found what needs a person: drift still open, pushes left
                    over, a target's token refused, a configuration change held for approval
    2    USAGE      the command cannot run as given: a bad option or value, an unknown name, a
                    conflict, a quarantined target, an unusable secret key
    3    DATABASE   the database cannot be used: unreachable, credentials refused, schema behind
    4    TARGET     a target cannot be used: unreachable, or answering with errors
    70   SOFTWARE   an unexpected error: a bug (run again with --debug and report the traceback)
    130  INTERRUPTED  stopped with Ctrl-C
"""

from __future__ import annotations

import os
import sys
import traceback
from enum import IntEnum
from typing import Any

import typer
from typer.core import TyperGroup

from scimward.errors import ScimwardError


class ExitCode(IntEnum):
    OK = 0
    ATTENTION = 1
    USAGE = 2
    DATABASE = 3
    TARGET = 4
    SOFTWARE = 70
    INTERRUPTED = 130


DEBUG_ENV = "SCIMWARD_DEBUG"


class CommandError(ScimwardError):
    """A failure only the command line knows (an option combination, a missing confirmation)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def classify(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and the line to print for one of the project's errors (a ``ScimwardError``, or a
    database driver's failure in the middle of a command); None for anything else: a bug.

    The error modules are imported here rather than at the top: ``scimward --help`` must not pay
    for SQLAlchemy, and by the time one of these errors exists, its module is loaded anyway.
    """
    if not isinstance(exc, ScimwardError):
        driver = _driver_error(exc)
        return (ExitCode.DATABASE, driver) if driver is not None else None
    from scimward.policy.plans import ConfigChangeHeld
    from scimward.scim.errors import ScimError
    from scimward.store.errors import DatabaseError
    from scimward.sync.errors import TargetError

    if isinstance(exc, CommandError):
        return exc.code, exc.message
    if isinstance(exc, DatabaseError):  # unreachable, refused, not migrated (an audit trail without heads)
        return ExitCode.DATABASE, str(exc)
    if isinstance(exc, ScimError):
        return ExitCode.USAGE, exc.detail
    if isinstance(exc, ConfigChangeHeld):  # accepted, and waiting for a second person
        return ExitCode.ATTENTION, f"held: {exc}"
    if isinstance(exc, TargetError):
        return ExitCode.TARGET, f"the target failed: {exc}"
    # a bad setting, URL, secret key or policy; an unknown change, four eyes, a change not pending
    return ExitCode.USAGE, str(exc)


def _driver_error(exc: BaseException) -> str | None:
    """A database driver's failure in the middle of a command (the server went away, a lock timed out)."""
    module = sys.modules.get("sqlalchemy.exc")
    if module is None or not isinstance(exc, module.DBAPIError):
        return None
    first = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return f"the database failed: {first[0] if first else type(exc).__name__}"


def debug_wanted(ctx: typer.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get(DEBUG_ENV, "") not in {"", "0", "false", "no"}


def report(message: str) -> None:
    """Print one line on stderr: ``error: ...``, with credentials hidden."""
    from rich.console import Console
    from rich.markup import escape

    from scimward.cli.redact import redact

    # Escaped: messages quote filters and paths, whose brackets Rich would read as markup.
    Console(stderr=True).print(f"[red]error:[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


class ChokepointGroup(TyperGroup):
    """The root command group: every subcommand, however registered, runs inside ``invoke`` here."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, BrokenPipeError):  # a closed pipe: the caller handles it quietly
            raise
        except KeyboardInterrupt:
            raise typer.Exit(code=ExitCode.INTERRUPTED) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("click", "typer")):  # usage errors: click prints them
                raise
            known = classify(exc)
            if debug_wanted(ctx):
                from scimward.cli.redact import redact

                sys.stderr.write(redact("".join(traceback.format_exception(exc))))
            if known is None:
                code, message = (
                    ExitCode.SOFTWARE,
                    (f"unexpected {type(exc).__name__}: {exc} (a bug: run again with --debug for the traceback)"),
                )
            else:
                code, message = known
            report(message)
            raise typer.Exit(code=code) from None
