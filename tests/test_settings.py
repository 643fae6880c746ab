"""One settings model for ``serve``, the API's processes and docs/configuration.md (issue 12 item 12)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from scimward import settings as model
from scimward.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"


def test_the_documented_table_is_the_one_the_model_generates() -> None:
    document = CONFIGURATION.read_text(encoding="utf-8")
    assert model.with_table(document) == document, "run `python3 tasks.py docs` to regenerate the table"


def test_every_scimward_variable_the_code_reads_is_documented() -> None:
    """SCIMWARD_DEFAULT_PAGINATION and three others were read and undocumented."""
    document = CONFIGURATION.read_text(encoding="utf-8")
    read = {
        name
        for path in (ROOT / "src").rglob("*.py")
        for name in re.findall(r"SCIMWARD_[A-Z_]*[A-Z]", path.read_text(encoding="utf-8"))
    }
    assert {"SCIMWARD_DEFAULT_PAGINATION", "SCIMWARD_WORKER", "SCIMWARD_SECRET_KEY"} <= read
    assert sorted(name for name in read if f"`{name}`" not in document) == []


def test_every_field_has_an_environment_variable_and_every_serve_option_one_too() -> None:
    names = [meta.env for _, meta in model.fields()]
    assert len(names) == len(set(names)) and all(name.startswith(model.ENV_PREFIX) for name in names)
    for flag in ("--host", "--port", "--workers", "--log-level", "--max-body-bytes"):
        assert any(meta.flag == flag for _, meta in model.fields()), flag


def test_from_env_reads_every_field_and_to_env_round_trips() -> None:
    chosen = Settings(
        database_url="sqlite:////tmp/x.db",
        host="0.0.0.0",
        port=9000,
        workers=3,
        public_url="https://scim.example.com/scim/v2",
        max_body_bytes=5,
        max_results=7,
        default_pagination="index",
        bulk_max_operations=9,
        bulk_max_payload_bytes=11,
        patch_max_operations=13,
        source_imports="workday=/tmp/workday.csv",
        source_check_seconds=60,
        agent_extension_in_config=True,
        limits_in_config=True,
        nhi_user_types="Robot",
        nhi_name_patterns="x-*",
        run_worker=False,
        log_level="debug",
        log_format="text",
        console_oidc_issuer="https://idp.example.com",
        console_oidc_client_id="scimward",
        console_oidc_client_secret="s3cret",
        console_oidc_roles="groups=idm:admin",
        console_session_minutes=60,
        console_idle_minutes=5,
        console_secure_cookies=False,
        catch_all_percent=50,
    )
    assert {f.name for f in dataclasses.fields(chosen) if getattr(chosen, f.name) == f.default} == set()
    assert Settings.from_env(chosen.to_env()) == chosen


def test_a_bad_value_names_the_variable_and_what_it_may_be() -> None:
    with pytest.raises(SettingsError, match="SCIMWARD_PORT is 'eighty'; it must be a whole number"):
        Settings.from_env({"SCIMWARD_PORT": "eighty"})
    with pytest.raises(SettingsError, match="SCIMWARD_WORKER is 'maybe'"):
        Settings.from_env({"SCIMWARD_WORKER": "maybe"})
    with pytest.raises(SettingsError, match=r"SCIMWARD_DEFAULT_PAGINATION .* use one of cursor, index"):
        Settings.from_env({"SCIMWARD_DEFAULT_PAGINATION": "pages"})
    # Refused when given, not when the first client reads a meta.location built on it.
    with pytest.raises(SettingsError, match=r"SCIMWARD_PUBLIC_URL \(or --public-url\) is 'scim.example.com'"):
        Settings.from_env({"SCIMWARD_PUBLIC_URL": "scim.example.com"})
    with pytest.raises(SettingsError, match=r"SCIMWARD_PORT .* is 70000; use a port from 1 to 65535"):
        Settings.from_env({"SCIMWARD_PORT": "70000"})
    with pytest.raises(SettingsError, match=r"SCIMWARD_WORKERS .* is 0; use 1 or more"):
        Settings.from_env({"SCIMWARD_WORKERS": "0"})


def test_an_empty_variable_means_the_default() -> None:
    assert Settings.from_env({"SCIMWARD_PUBLIC_URL": "", "SCIMWARD_PORT": " "}) == Settings()


def test_the_console_role_mapping_is_read_rule_by_rule_and_a_bad_rule_is_named() -> None:
    assert model.role_mapping("groups=idm-admins:admin, email=ada@example.com:viewer") == [
        ("groups", "idm-admins", "admin"),
        ("email", "ada@example.com", "viewer"),
    ]
    with pytest.raises(SettingsError, match="'groups=x:owner' names role 'owner'"):
        Settings(console_oidc_roles="groups=x:owner")
    with pytest.raises(SettingsError, match="'groups' is not CLAIM=VALUE:ROLE"):
        Settings(console_oidc_roles="groups")


def test_the_console_roles_of_the_settings_are_the_stores() -> None:
    from scimward.store.auth import ROLES

    assert model.CONSOLE_ROLES == ROLES
