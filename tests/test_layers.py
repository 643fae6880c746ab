"""DESIGN.md's layers, enforced: outer layers import inner ones, never the reverse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import repo_root


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=repo_root(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
