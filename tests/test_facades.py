"""The lazy facades (``scimward.facades``): what mypy reads and what Python finds at run time agree.

Each facade lists its names for mypy (imports under ``TYPE_CHECKING``), in ``__all__``, and for
``lazy_exports``. A name listed in one and not another, or found at run time in another module than
mypy was told, fails here.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import scimward

FACADES = (
    "scimward.store",
    "scimward.store.identity",
    "scimward.store.provisioning",
    "scimward.store.governance",
    "scimward.store.auth",
    "scimward.policy",
    "scimward.sync",
)


def checked_imports(package: str) -> dict[str, tuple[str, str]]:
    """The names the facade imports under ``if TYPE_CHECKING:``, each as (module, attribute)."""
    path = Path(scimward.__file__).parent.joinpath(*package.split(".")[1:], "__init__.py")
    names: dict[str, tuple[str, str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module is not None
                for alias in statement.names:
                    names[alias.asname or alias.name] = (statement.module, alias.name)
    return names


@pytest.mark.parametrize("package", FACADES)
def test_every_public_name_is_what_mypy_was_told(package: str) -> None:
    facade = importlib.import_module(package)
    told = checked_imports(package)
    for name in facade.__all__:
        if name not in told:  # defined by the facade itself (``policy.identity_store``)
            assert name in vars(facade), name
            continue
        module, attribute = told[name]
        if module == package:  # ``from package import submodule``
            expected = importlib.import_module(f"{package}.{attribute}")
        else:
            expected = getattr(importlib.import_module(module), attribute)
        assert getattr(facade, name) is expected, name
        assert name in dir(facade), name


@pytest.mark.parametrize("package", FACADES)
def test_what_mypy_was_told_is_public_and_nothing_else_is_found(package: str) -> None:
    facade = importlib.import_module(package)
    told = checked_imports(package)
    annotations_only = {"Database", "IdentityStore"} if package == "scimward.policy" else set()
    assert set(told) - annotations_only <= set(facade.__all__)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        facade.not_a_name  # noqa: B018 (the attribute access is the test)


def test_importing_a_room_imports_only_what_it_is_asked_for() -> None:
    """``scimward target list`` reads target rows: neither the gate, nor the identity store's writer."""
    probe = (
        "import sys\n"
        "from scimward.store.provisioning import TargetRepository\n"
        "from scimward.store.database import Database\n"
        "print('\\n'.join(sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(result.stdout.split())
    assert "scimward.store.provisioning.targets" in loaded
    unwanted = {"scimward.policy.gate", "scimward.store.identity.writer", "scimward.store.governance.listings"}
    assert sorted(loaded & unwanted) == []
