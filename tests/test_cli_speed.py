"""``scimward --help`` and ``--version`` start without the heavy imports (issue 12 item 11).

Their time is a benchmark's to measure, not a unit test's: what makes them fast is checked here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from scimward.cli.main import COMMANDS

SCIMWARD = str(Path(sys.executable).parent / "scimward")
HEAVY = ("sqlalchemy", "alembic", "httpx", "starlette", "uvicorn", "structlog", "scimward.store", "scimward.sync")


def imported_by(*args: str) -> set[str]:
    probe = (
        "import sys; sys.argv = ['scimward', *sys.argv[1:]]\n"
        "from scimward.cli.main import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
    return set(result.stderr.split())


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    loaded = imported_by(*args)
    assert "typer" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_registered_line_is_the_commands_own_help(name: str) -> None:
    command = COMMANDS[name].load(name)
    assert command.name == name
    own = (command.help or "").strip().split("\n")[0]
    assert own == COMMANDS[name].help


def test_every_command_appears_in_help() -> None:
    result = subprocess.run([SCIMWARD, "--help"], capture_output=True, text=True, timeout=60, env={"COLUMNS": "200"})
    assert result.returncode == 0
    for name in COMMANDS:
        assert f" {name} " in result.stdout, name


def test_a_command_group_added_eagerly_shares_the_chokepoint() -> None:
    """A command registered with add_typer (not lazily) still runs inside the root group's invoke."""
    from scimward.cli.main import app

    group = typer.main.get_group(app)
    assert type(group).invoke.__qualname__ == "ChokepointGroup.invoke"
