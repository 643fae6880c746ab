"""Hide credentials in what the command line prints, whatever produced the text.

The chokepoint passes every error line (and a ``--debug`` traceback) through ``redact``: a driver's
message or a traceback may quote the database URL, and its password must not reach a terminal, a
CI log or a bug report. The passwords are those of the database URLs this process was given, on
the command line or in ``SCIMWARD_DATABASE_URL``. Standard library only: it runs before anything
heavy is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

HIDDEN = "***"


def url_passwords(candidates: Iterable[str]) -> set[str]:
    """The passwords in those of ``candidates`` that are URLs with one (raw and percent-decoded)."""
    found: set[str] = set()
    for text in candidates:
        for word in text.split("=", 1)[-1:]:  # --database-url=URL as well as --database-url URL
            if "://" not in word:
                continue
            try:
                password = urlsplit(word).password
            except ValueError:
                continue
            if password:
                found |= {password, unquote(password)}
    return found


def redact(text: str, candidates: Iterable[str] | None = None) -> str:
    """``text`` with every password of the process's database URLs replaced by ``***``."""
    if candidates is None:
        candidates = [*sys.argv, os.environ.get("SCIMWARD_DATABASE_URL", "")]
    # Longest first, so a password that contains another is hidden whole.
    for password in sorted(url_passwords(candidates), key=len, reverse=True):
        text = text.replace(password, HIDDEN)
    return text
