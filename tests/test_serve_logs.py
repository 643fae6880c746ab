"""``scimward serve`` with JSON logs (the default): every line on stderr is one JSON object, uvicorn's
and the start-up's too; stdout keeps what a person copies (the SCIM base URL). Issue 12, item 13."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port

SCIMWARD = str(Path(sys.executable).parent / "scimward")


def test_every_line_serve_logs_is_json(tmp_path: Path) -> None:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
    process = subprocess.Popen(
        [SCIMWARD, "serve", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'hub.db'}"],
        env=environ,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Uvicorn running" in line for line in lines):
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
    finally:
        process.send_signal(signal.SIGINT)
        out, rest = process.communicate(timeout=30)
    lines += rest.splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    assert {
        "the database is at the newest schema",
        f"Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)",
    } <= {event["event"] for event in events}, lines
    assert all("logger" in event and "level" in event for event in events)
    assert f"SCIM base URL: http://127.0.0.1:{port}/scim/v2" in out
