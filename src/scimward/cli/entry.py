"""The ``scimward`` program's entry point (``[project.scripts]``) and ``python -m scimward``'s.

It imports the command line inside the guard, so that Ctrl-C while Python is still importing it
exits 130 without a traceback, as it does once a command runs (``cli.exits``). Standard library only.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # cli.exits.ExitCode.INTERRUPTED, which this module must not import first


def main() -> None:
    try:
        from scimward.cli.main import main as run

        run()
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
