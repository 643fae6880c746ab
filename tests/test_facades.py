"""The lazy facades (``scimward.facades``): what mypy reads and what Python finds at run time agree.

Each facade lists its names twice: where each lives (imports under ``TYPE_CHECKING``) and which are
public (``__all__``). A name in one and not the other, or found at run time elsewhere than mypy was
told, fails here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import scimward
from scimward.facades import checked_imports

FACADES = (
    "scimward.store",
    "scimward.store.identity",
    "scimward.store.provisioning",
    "scimward.store.governance",
    "scimward.store.auth",
    "scimward.policy",
    "scimward.sync",
    "scimward.governance.nhi",
)


def told(package: str) -> dict[str, tuple[str, str]]:
    """What mypy is told of the facade's names: its imports under ``if TYPE_CHECKING:``."""
    return checked_imports(Path(scimward.__file__).parent.joinpath(*package.split(".")[1:], "__init__.py"))


@pytest.mark.parametrize("package", FACADES)
def test_every_public_name_is_what_mypy_was_told(package: str) -> None:
    facade = importlib.import_module(package)
    imports = told(package)
    for name in facade.__all__:
        if name not in imports:  # defined by the facade itself (``policy.identity_store``)
            assert name in vars(facade), name
            continue
        module, attribute = imports[name]
        if module == package:  # ``from package import submodule``
            expected = importlib.import_module(f"{package}.{attribute}")
        else:
            expected = getattr(importlib.import_module(module), attribute)
        assert getattr(facade, name) is expected, name
        assert name in dir(facade), name


@pytest.mark.parametrize("package", FACADES)
def test_what_mypy_was_told_is_public_and_nothing_else_is_found(package: str) -> None:
    facade = importlib.import_module(package)
    imports = told(package)
    annotations_only = {"Database", "IdentityStore"} if package == "scimward.policy" else set()
    assert set(imports) - annotations_only <= set(facade.__all__)
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
