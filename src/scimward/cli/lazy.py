"""Commands registered by module path and imported only when they run.

``scimward --help`` lists every command without importing any: each entry carries the one line
the listing shows. A command's module, with SQLAlchemy, httpx and the rest behind it, is imported
when that command (or its own ``--help``) runs. ``tests/test_cli_speed.py`` checks that each
entry's line is the command's own first docstring line, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand

from scimward.cli.exits import ChokepointGroup

_LISTING = "scimward.listing"


@dataclass(frozen=True)
class LazyCommand:
    #: ``module:attribute``: a ``typer.Typer`` (a command group) or a function (one command).
    target: str
    #: The line ``scimward --help`` shows for it.
    help: str

    def load(self, name: str) -> Any:
        module, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if isinstance(found, typer.Typer):
            group = typer.main.get_group(found)
            group.name = name
            return group
        single = typer.Typer()
        single.command(name)(found)
        return typer.main.get_command(single)


class LazyGroup(ChokepointGroup):
    """The root group: its eager commands, then the lazy ones of ``lazy``, in that order."""

    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in self.lazy if name not in eager)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        loaded = super().get_command(ctx, cmd_name)
        entry = self.lazy.get(cmd_name)
        if loaded is not None or entry is None:
            return loaded
        if ctx.meta.get(_LISTING):
            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        command = entry.load(cmd_name)
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop(_LISTING, None)


def lazy_group(commands: Mapping[str, LazyCommand]) -> type[LazyGroup]:
    """The root group class for ``typer.Typer(cls=...)``, holding ``commands``."""
    return type("ScimwardGroup", (LazyGroup,), {"lazy": dict(commands)})
