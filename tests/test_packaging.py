"""What ships beside the code says what the code does (issue 12, item 16): the licence, the image and
the compose file. No Docker here: the files are read, and what they name is checked against the
hub itself (its commands, its settings, its health routes)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from scimward.api.app import SCIM_PREFIX, create_app
from scimward.api.settings import Settings
from scimward.cli.main import COMMANDS
from scimward.settings import fields
from scimward.sync.secrets import DATA_DIR_ENV, KEY_ENV, KEY_FILE_ENV
from tests.conftest import repo_root

ROOT = repo_root()
#: Every variable the hub reads: the settings model's, and the secret key's.
KNOWN_ENV = {meta.env for _, meta in fields()} | {KEY_ENV, KEY_FILE_ENV, DATA_DIR_ENV}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_the_licence_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "Apache-2.0"
    assert re.match(r"\s*Apache License\s+Version 2\.0, January 2004", text)
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (ROOT / "Dockerfile").read_text()


def test_compose_runs_the_hub_a_worker_and_postgresql() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "hub", "worker"}
    assert services["hub"]["command"][0] == "serve" and services["worker"]["command"][0] == "worker"
    for name in ("hub", "worker"):
        assert services[name]["command"][0] in COMMANDS
        url = sa.make_url(
            services[name]["environment"]["SCIMWARD_DATABASE_URL"].replace("${POSTGRES_PASSWORD:-scimward}", "secret")
        )
        assert (url.drivername, url.host, url.database) == ("postgresql+psycopg", "postgres", "scimward")
    # One worker pushes: the hub's own is off. Both hold the same key for target credentials.
    assert services["hub"]["environment"]["SCIMWARD_WORKER"] == "0"
    assert services["hub"]["volumes"] == services["worker"]["volumes"]
    assert services["worker"]["depends_on"]["hub"]["condition"] == "service_healthy"
    # The public URL is the SCIM base URL (meta.location is built on it), not the host alone.
    public = services["hub"]["environment"]["SCIMWARD_PUBLIC_URL"]
    match = re.fullmatch(r"\$\{SCIMWARD_PUBLIC_URL:-http://localhost:8000(/\S*)\}", public)
    assert match and match[1] == SCIM_PREFIX, public


def test_every_variable_the_files_set_is_one_the_hub_reads() -> None:
    texts = [(ROOT / name).read_text() for name in ("compose.yaml", "Dockerfile")]
    named = {variable for text in texts for variable in re.findall(r"\bSCIMWARD_[A-Z_]+", text)}
    assert named and named <= KNOWN_ENV, named - KNOWN_ENV


def test_the_image_checks_a_route_the_hub_serves(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [check] = re.findall(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", dockerfile, re.M)
    [path] = re.findall(r"http://127\.0\.0\.1:%s(/\w+)", check)
    # The check asks the port serve listens on, not a fixed 8000 (another process's, on a host network).
    assert "os.environ.get('SCIMWARD_PORT', '8000')" in check and Settings().port == 8000
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'hub.db'}"))
    assert path == "/readyz" and path in {getattr(route, "path", None) for route in app.routes}
    # Both stages build on the one base image, which a mirror may replace (--build-arg PYTHON_IMAGE).
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.1[1-9]-slim$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["scimward"\]$', dockerfile, re.M)
    assert re.search(r'^CMD \["serve"\]$', dockerfile, re.M) and "serve" in COMMANDS
    assert re.search(r"^USER scimward$", dockerfile, re.M), "the hub does not run as root"


def test_the_build_stage_copies_what_building_the_wheel_reads() -> None:
    """`pip wheel .` in the image reads pyproject's readme and licence files and the package; a file
    pyproject names but the Dockerfile does not copy (or .dockerignore leaves out) breaks the build."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {"pyproject.toml", project["readme"], *project.get("license-files", ["LICENSE"]), "src"}
    build = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]  # the first stage, after the ARG
    copied = {name for line in re.findall(r"^COPY (?!--from)(.+)$", build, re.M) for name in line.split()[:-1]}
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert needed <= copied and not needed & ignored, (needed - copied, needed & ignored)
