"""Lazy facades: a package's public names, each imported from its module on first use (PEP 562).

A facade (``scimward.store.provisioning``, ``scimward.policy``, ...) names everything the outer layers
may use, but importing it must not import every room behind it: ``scimward target list`` needs the
targets' rows, not the gate and its CEL engine. So a facade's ``__init__`` lists its names three times,
each for a reader that needs it in its own form, and ``tests/test_facades.py`` checks that they agree::

    if TYPE_CHECKING:  # for mypy and the import contract: what each name is
        from scimward.store.provisioning.targets import TargetRepository, TargetRow

    __all__ = ["TargetRepository", "TargetRow"]  # the public names, checked by mypy's re-export rule

    if not TYPE_CHECKING:  # at run time: where each name is found
        __getattr__, __dir__ = lazy_exports(__name__, {"targets": ("TargetRepository", "TargetRow")})

``"STATUSES as FINDING_STATUSES"`` exports a name under another, as ``import ... as`` does; the module
``""`` stands for the package itself, whose submodules are named as they are (``"": ("outbox",)``).
Standard library only: every layer may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``, finding each exported name in its module.

    ``exports`` maps a module of the package (relative: ``"targets"``) to the names it exports. A name
    is imported the first time it is asked for, and then kept on the package, so that it is asked for
    only once.
    """
    where: dict[str, tuple[str, str | None]] = {}
    for module, names in exports.items():
        for entry in names:
            original, _, exported = entry.partition(" as ")
            if module:
                where[exported or original] = (f"{package}.{module}", original)
            else:  # a submodule of the package itself
                where[exported or original] = (f"{package}.{original}", None)

    def __getattr__(name: str) -> object:
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = found
        value: object = importlib.import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
