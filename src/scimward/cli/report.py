"""``scimward report``: the evidence report, as one self-contained HTML file or as JSON.

It takes today's evidence snapshot as it goes (the trend's newest point) and verifies the audit
trail. Exit 0 with the report written; 1 when the audit trail is broken (the report says where).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scimward.cli.common import DatabaseUrl, checked_url, err, fail
from scimward.cli.exits import ExitCode
from scimward.governance import report
from scimward.store.database import Database

FORMATS = ("html", "json")


def report_command(
    output_format: Annotated[str, typer.Option("--format", help="html (one self-contained file) or json.")] = "html",
    out: Annotated[Path | None, typer.Option("--out", help="Write it to this file (default: stdout).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The evidence report: coverage, propagation risk, findings per control, audit status."""
    if output_format not in FORMATS:
        raise fail(f"--format must be html or json, not {output_format!r}")
    url = checked_url(database_url)

    async def run() -> dict[str, Any]:
        database = Database(url)
        try:
            return await report.gather(database)
        finally:
            await database.dispose()

    built = asyncio.run(run())
    text = report.render_html(built) if output_format == "html" else json.dumps(built, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror}") from exc
        err.print(f"evidence report written to {out}")
    if not built["audit"]["intact"]:
        raise fail(f"the audit trail is broken: {built['audit']['broken']['message']}", ExitCode.ATTENTION)
