"""``scimward target ...`` run as an admin runs it, against a real SCIM server on loopback.

The target is a second scimward on its own database. The hub's database is a fresh SQLite file per
test, and the key file is the test's own: nothing in the environment is inherited by accident.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from scimward.store.database import Database
from scimward.store.provisioning.targets import TargetRepository
from scimward.sync.secrets import generate_key
from tests import forkserver
from tests.conftest import Peer, free_port, migrated_sqlite


@dataclass
class Cli:
    database: Path
    key_file: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
        environ.update(
            {
                "SCIMWARD_DATABASE_URL": self.database_url,
                "SCIMWARD_KEY_FILE": str(self.key_file),
                "COLUMNS": "200",
                **(env or {}),
            }
        )
        return forkserver.run(["target", *args], env=environ, input=stdin)

    def ok(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr
        return result

    def add(self, name: str, application: Peer, *options: str, env: dict[str, str] | None = None) -> None:
        self.ok(
            "add",
            name,
            "--url",
            application.base_url,
            "--token-env",
            "APP_TOKEN",
            *options,
            env={"APP_TOKEN": application.token, **(env or {})},
        )

    def show(self, name: str) -> dict[str, object]:
        return json.loads(self.ok("show", name, "--json").stdout)  # type: ignore[no-any-return]


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path) -> Cli:
    migrated_sqlite(sqlite_template, tmp_path / "hub.db")
    return Cli(tmp_path / "hub.db", tmp_path / "keys" / "secret.key")


def test_add_keeps_the_token_encrypted_and_out_of_every_output(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    shown = cli.ok("show", "crm", "--json").stdout + cli.ok("show", "crm").stdout
    listed = cli.ok("list").stdout + cli.ok("list", "--json").stdout
    assert "crm" in listed and application.base_url in shown
    assert application.token not in shown + listed
    engine = sa.create_engine(cli.database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select token_encrypted from targets where name = 'crm'")).scalar_one()
        dump = " ".join(str(v) for row in conn.execute(sa.text("select * from targets")) for v in row)
    engine.dispose()
    assert stored != application.token and application.token not in dump


def test_the_key_file_is_generated_with_mode_0600(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    assert stat.S_IMODE(cli.key_file.stat().st_mode) == 0o600


def test_test_reports_what_the_target_supports(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    result = cli.ok("test", "crm")
    assert "ok" in result.stdout and "PATCH yes" in result.stdout and "paging cursor+index" in result.stdout
    report = json.loads(cli.ok("test", "crm", "--json").stdout)
    assert report["ok"] and report["credential"] == "accepted"
    assert report["supports"]["bulk"] and report["authentication_schemes"] == ["oauthbearertoken"]
    assert application.token not in result.stdout + result.stderr


def test_a_rejected_token_is_reported_not_raised(cli: Cli, application: Peer) -> None:
    cli.ok("add", "crm", "--url", application.base_url, "--token-env", "T", env={"T": "scimward_wrong"})
    result = cli("test", "crm")
    assert result.returncode == 1
    assert "AuthError 401" in result.stdout and "FAILED" in result.stdout
    assert "Traceback" not in result.stderr and "scimward_wrong" not in result.stdout


def test_an_unreachable_target_is_reported(cli: Cli) -> None:
    cli.ok("add", "gone", "--url", f"http://127.0.0.1:{free_port()}/scim/v2", "--token-env", "T", env={"T": "x"})
    report = json.loads(cli("test", "gone", "--json").stdout)
    assert not report["ok"] and report["credential"] == "unknown"
    assert report["checks"][0]["error"] == "TransientError" and report["checks"][0]["status"] is None


def test_the_token_may_come_from_a_file_or_standard_input(cli: Cli, application: Peer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(application.token + "\n")
    cli.ok("add", "from-file", "--url", application.base_url, "--token-file", str(token_file))
    cli.ok("add", "from-stdin", "--url", application.base_url, "--token-file", "-", stdin=application.token)
    assert json.loads(cli.ok("test", "from-file", "--json").stdout)["ok"]
    assert json.loads(cli.ok("test", "from-stdin", "--json").stdout)["ok"]


def test_a_token_on_the_command_line_works_with_a_warning(cli: Cli, application: Peer) -> None:
    result = cli.ok("add", "crm", "--url", application.base_url, "--token", application.token)
    assert "shell history" in result.stderr and "--token-env" in result.stderr
    assert application.token not in result.stderr + result.stdout


def test_the_token_is_required_and_given_one_way(cli: Cli, application: Peer) -> None:
    missing = cli("add", "crm", "--url", application.base_url)
    assert missing.returncode == 2 and "--token-env" in missing.stderr
    both = cli("add", "crm", "--url", application.base_url, "--token", "a", "--token-env", "T", env={"T": "b"})
    assert both.returncode == 2 and "one way" in both.stderr
    unset = cli("add", "crm", "--url", application.base_url, "--token-env", "NOT_SET_ANYWHERE")
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE" in unset.stderr


def test_configuration_is_stored_as_given(cli: Cli, application: Peer) -> None:
    cli.add(
        "hr",
        application,
        "--scope",
        'userType eq "Employee" and active eq true',
        "--no-groups",
        "--map",
        "nickName=displayName",
        "--const",
        "userType=Contractor",
        "--const",
        "active=true",
        "--map-only",
        "--deprovision",
        "tombstone",
        "--tombstone-days",
        "14",
        "--option",
        "quarantine_after=5",
    )
    config = cli.show("hr")["config"]
    assert config == {
        "scope": 'userType eq "Employee" and active eq true',
        "push_groups": False,
        "group_scope": None,
        "mapping": [
            {"target": "nickName", "source": "displayName"},
            {"target": "userType", "constant": "Contractor"},
            {"target": "active", "constant": True},
        ],
        "deprovision": "tombstone",
        "tombstone_days": 14,
        "quarantine_after": 5,
    }


def test_the_default_mapping_is_kept_until_edited(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    assert cli.show("crm")["config"]["mapping"] is None  # type: ignore[index]
    cli.ok(
        "set",
        "crm",
        "--map",
        "title=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "--drop",
        "phoneNumbers",
    )
    mapping = cli.show("crm")["config"]["mapping"]  # type: ignore[index]
    targets = [rule["target"] for rule in mapping]
    assert "userName" in targets and "phoneNumbers" not in targets and targets.count("title") == 1
    assert mapping[-1]["source"].endswith(":department")
    cli.ok("set", "crm", "--default-mapping")
    assert cli.show("crm")["config"]["mapping"] is None  # type: ignore[index]


def test_set_changes_only_what_is_given(cli: Cli, application: Peer) -> None:
    cli.add("crm", application, "--scope", "active eq true", "--deprovision", "delete")
    cli.ok("set", "crm", "--group-scope", 'displayName sw "crm-"')
    config = cli.show("crm")["config"]
    assert config["scope"] == "active eq true" and config["deprovision"] == "delete"  # type: ignore[index]
    assert config["group_scope"] == 'displayName sw "crm-"'  # type: ignore[index]
    cli.ok("set", "crm", "--scope", "")
    assert cli.show("crm")["config"]["scope"] is None  # type: ignore[index]


def test_set_replaces_the_token(cli: Cli, application: Peer) -> None:
    cli.ok("add", "crm", "--url", application.base_url, "--token-env", "T", env={"T": "wrong"})
    cli.ok("set", "crm", "--token-env", "T", env={"T": application.token})
    assert json.loads(cli.ok("test", "crm", "--json").stdout)["ok"]


def test_set_with_nothing_to_change_says_so(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    result = cli("set", "crm")
    assert result.returncode == 2 and "nothing to change" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scope", "userType eq"), "scope is not a valid SCIM filter"),
        (("--group-scope", "displayName zz 1"), "group scope is not a valid SCIM filter"),
        (("--map", "nickName"), "TARGET=SOURCE"),
        (("--option", "scope=x"), "option of its own"),
        # Options propagate and reconcile read later are checked now (issue 12, item 5).
        (("--option", "reconcile_every=banana"), "reconcile_every: 'banana' is not an interval"),
        (("--option", "orphans=nuke"), "orphans must be 'report' or 'deactivate'"),
        (("--option", "quarantine_after=0"), "quarantine_after must be a whole number of failures, 1 or more, not 0"),
        (("--option", "profile=bogus"), "profile must be one of standard, conservative"),
    ],
)
def test_bad_configuration_is_one_clear_line(cli: Cli, application: Peer, args: tuple[str, ...], message: str) -> None:
    result = cli("add", "crm", "--url", application.base_url, "--token-env", "T", *args, env={"T": "x"})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert cli("show", "crm").returncode == 2, "nothing was added"


def test_an_option_scimward_does_not_read_is_warned_about(cli: Cli, application: Peer) -> None:
    result = cli(
        "add", "crm", "--url", application.base_url, "--token-env", "T", "--option", "reconcile_evry=6h", env={"T": "x"}
    )
    assert result.returncode == 0
    assert "warning: --option reconcile_evry is not a setting scimward reads" in result.stderr
    changed = cli("set", "crm", "--option", "orphans=nuke")
    assert changed.returncode == 2 and "orphans must be" in changed.stderr
    assert "orphans" not in json.loads(cli("show", "crm", "--json").stdout)["config"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://crm.example/scim", "https://"),
        ("https:///scim", "no host"),
        ("https://admin:hunter2@crm.example/scim", "must not hold credentials"),
        ("https://crm.example/scim?x=1", "without ?query"),
    ],
)
def test_a_bad_url_is_refused(cli: Cli, url: str, message: str) -> None:
    result = cli("add", "crm", "--url", url, "--token-env", "T", env={"T": "x"})
    assert result.returncode == 2 and message in result.stderr
    assert "hunter2" not in result.stderr


def test_a_bad_name_is_refused(cli: Cli, application: Peer) -> None:
    result = cli("add", "no spaces", "--url", application.base_url, "--token-env", "T", env={"T": "x"})
    assert result.returncode == 2 and "target name" in result.stderr


def test_plain_http_to_another_host_is_warned_about(cli: Cli) -> None:
    result = cli.ok("add", "crm", "--url", "http://crm.example/scim/v2", "--token-env", "T", env={"T": "x"})
    assert "plain http" in result.stderr


def test_adding_a_name_twice_is_refused(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    result = cli("add", "crm", "--url", application.base_url, "--token-env", "T", env={"T": "x"})
    assert result.returncode == 2 and "already exists" in result.stderr


def test_unknown_targets_are_named(cli: Cli) -> None:
    for command in ("show", "test", "resume", "remove"):
        result = cli(command, "nowhere", "--yes") if command == "remove" else cli(command, "nowhere")
        assert result.returncode == 2 and "nowhere" in result.stderr, command


def test_remove_asks_unless_yes(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)
    asked = cli("remove", "crm")
    assert asked.returncode == 2 and "--yes" in asked.stderr
    cli.ok("remove", "crm", "--yes")
    assert "crm" not in cli.ok("list").stdout


def test_resume_lifts_a_quarantine(cli: Cli, application: Peer) -> None:
    cli.add("crm", application)

    async def quarantine() -> None:
        database = Database(cli.database_url)
        try:
            repository = TargetRepository(database)
            await repository.quarantine((await repository.by_name("crm")).id, "20 failures in a row")
        finally:
            await database.dispose()

    asyncio.run(quarantine())
    view = cli.show("crm")
    assert view["status"] == "quarantined" and view["quarantine"]["reason"] == "20 failures in a row"  # type: ignore[index]
    assert "quarantined" in cli.ok("list").stdout
    cli.ok("resume", "crm")
    assert cli.show("crm")["status"] == "active"


def test_another_key_file_cannot_decrypt_and_says_why(cli: Cli, application: Peer, tmp_path: Path) -> None:
    cli.add("crm", application)
    result = cli("test", "crm", env={"SCIMWARD_KEY_FILE": str(tmp_path / "other.key")})
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = cli("test", "crm", env={"SCIMWARD_SECRET_KEY": generate_key()})
    assert result.returncode == 2
    assert "cannot be decrypted with this key" in result.stderr and "SCIMWARD_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_secret_key_names_the_variable(cli: Cli, application: Peer) -> None:
    result = cli(
        "add",
        "crm",
        "--url",
        application.base_url,
        "--token-env",
        "T",
        env={"T": "x", "SCIMWARD_SECRET_KEY": "too-short"},
    )
    assert result.returncode == 2 and "SCIMWARD_SECRET_KEY" in result.stderr and "too-short" not in result.stderr


def test_the_secret_key_variable_serves_instead_of_a_file(cli: Cli, application: Peer) -> None:
    key = generate_key()
    cli.add("crm", application, env={"SCIMWARD_SECRET_KEY": key})
    assert not cli.key_file.exists()
    assert json.loads(cli.ok("test", "crm", "--json", env={"SCIMWARD_SECRET_KEY": key}).stdout)["ok"]
