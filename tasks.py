#!/usr/bin/env python3
"""Bootstrap and run scimward from a fresh clone with nothing but Python >= 3.11.

    python3 tasks.py demo    # make .venv, install, serve on SQLite with demo data
    python3 tasks.py test    # make .venv, install, run the whole test suite in parallel
    python3 tasks.py docs    # rewrite the settings table in docs/configuration.md from the settings model

Standard library only: it is what runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".scimward-installed"


def ensure_env() -> None:
    """Create .venv and install the project with its dev extras when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run by any python3, so say why it stops
        sys.exit(f"scimward needs Python >= 3.11, this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing scimward and its dev dependencies into .venv ...", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist's options, unless the caller chose their own (``-n 0`` runs serially).

    One worker per core; ``worksteal`` hands a worker that ran out of tests some of another's, and the
    slow tests start first (tests/conftest.py), so a test of a minute does not leave a core idle at
    the end. Every worker is a session of its own (tests/conftest.py), so no test shares a worker's
    state. Two workers per core were measured on 2 cores, quiet: 7 min 48 s, against 8 min 18 s and
    7 min 49 s in two runs with one: no gain to show for a load average of 5 instead of 3.4, under
    which the suite's timing-sensitive tests have less room (docs/benchmarks.md).
    """
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses", "--dist")) for arg in args):
        return []
    return ["-n", "auto", "--dist", "worksteal"]


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    rest = argv[2:]
    if command == "demo":
        ensure_env()
        args = ["serve", "--demo", "--database-url", "sqlite:///scimward-demo.db", *rest]
        return subprocess.call([str(BIN / "scimward"), *args])
    if command == "test":
        ensure_env()
        # Byte-code for src/ once, so that the suite's `scimward` processes (each worker's fork server,
        # and the commands exec'd) load it rather than compile every module again (each of them would,
        # where PYTHONDONTWRITEBYTECODE is set).
        subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", str(ROOT / "src")], check=True)
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *parallel(rest), *rest], cwd=ROOT)
    if command == "docs":
        ensure_env()
        return subprocess.call([str(BIN / "python"), "-m", "scimward.settings", "docs/configuration.md"], cwd=ROOT)
    if command == "env":
        ensure_env()
        return 0
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
