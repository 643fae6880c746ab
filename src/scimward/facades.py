"""Lazy facades: a package's public names, each imported from its module on first use (PEP 562).

A facade (``scimward.store.provisioning``, ``scimward.policy``, ...) names everything the outer layers
may use, but importing it must not import every room behind it: ``scimward target list`` needs the
targets' rows, not the gate and its CEL engine. A facade's ``__init__`` says where each name lives
once, in imports under ``TYPE_CHECKING`` that mypy and the import contract read as they read any
import, and which ``lazy_exports`` reads at run time::

    if TYPE_CHECKING:
        from scimward.store.provisioning import outbox  # a submodule
        from scimward.store.provisioning.targets import TargetRepository, TargetRow

    __all__ = ["TargetRepository", "TargetRow", "outbox"]

    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)

Only the names in ``__all__`` are exported; an import there that ``__all__`` does not name only
annotates what the facade defines itself. Standard library only: every layer may use it.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def checked_imports(path: str | Path) -> dict[str, tuple[str, str]]:
    """The names a module imports under ``if TYPE_CHECKING:``, each as (module, attribute)."""
    names: dict[str, tuple[str, str]] = {}
    for node in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module is not None:
                    for alias in statement.names:
                        names[alias.asname or alias.name] = (statement.module, alias.name)
    return names


def lazy_exports(
    package: str, path: str, public: Sequence[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` (its ``__init__`` at ``path``), finding
    each name of ``public`` where the ``TYPE_CHECKING`` imports say, the first time it is asked for;
    it is then kept on the package."""
    where = {name: found for name, found in checked_imports(path).items() if name in public}

    def __getattr__(name: str) -> object:
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = found
        if module == package:  # ``from package import submodule``
            value: object = importlib.import_module(f"{package}.{attribute}")
        else:
            value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
