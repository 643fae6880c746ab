"""A source's settings as the command line and the admin API take them, checked in one place.

``scimward source add NAME --kind K [--priority N] [--mapping FILE] [--correlate KEYS] [--joiners J]``
and ``POST /admin/v1/sources`` build the same stored configuration with ``source_config``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scimward.governance.sources.correlate import KEYS
from scimward.governance.sources.readers import load_format
from scimward.scim.errors import InvalidValue
from scimward.store.governance import SOURCE_KINDS

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
JOINERS = ("report", "create")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidValue(f"source name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def source_config(
    kind: str, *, mapping: Path | None = None, correlate: Sequence[str] | None = None, joiners: str = "report"
) -> dict[str, Any] | None:
    """The stored configuration of a new source; ``InvalidValue`` naming what is wrong."""
    if kind not in SOURCE_KINDS:
        raise InvalidValue(f"--kind must be {', '.join(SOURCE_KINDS)}, not {kind!r}")
    if kind == "scim" and (mapping or correlate is not None or joiners != "report"):
        raise InvalidValue("--mapping, --correlate and --joiners are for HR sources (--kind csv or json)")
    if joiners not in JOINERS:
        raise InvalidValue(f"--joiners must be report or create, not {joiners!r}")
    config: dict[str, Any] = {"joiners": joiners} if joiners == "create" else {}
    if mapping is not None:
        load_format(mapping)  # checked now, read again at each import
        config["mapping"] = str(mapping.resolve())
    if correlate is not None:
        keys = [key.strip() for key in correlate if key.strip()]
        unknown = [key for key in keys if key not in KEYS]
        if unknown or not keys:
            raise InvalidValue(
                f"--correlate: unknown key {', '.join(unknown) or repr(','.join(correlate))} ({', '.join(KEYS)})"
            )
        config["correlate"] = keys
    return config or None
