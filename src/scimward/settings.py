"""Every setting of ``scimward serve`` and the hub it runs, declared once.

Each field of ``Settings`` carries, beside its type and default, the environment variable it is
read from, the command-line option that sets it (if any) and one line of help. From that one
declaration come the ``serve`` options (``cli/serve.py``), ``Settings.from_env`` (what every API
process reads, uvicorn's workers included) and the table in docs/configuration.md
(``markdown_table``; ``tests/test_settings.py`` fails when the document and the model disagree).

A plain frozen dataclass rather than pydantic-settings: the values are a handful of strings,
integers, flags and choices, and the command line must start in a few milliseconds (``--help`` does
not import this module's users, but ``serve`` does, and so do the API's workers). Standard library
only; it imports nothing of scimward's, so every layer may read it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scimward.errors import ConfigurationError

MIB = 1024 * 1024
ENV_PREFIX = "SCIMWARD_"
DEFAULT_DATABASE_URL = "sqlite:///scimward.db"
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ConfigurationError):
    """A setting's value is not one it can take; the message names the setting and what it can be."""


@dataclass(frozen=True)
class Meta:
    env: str
    help: str
    #: The ``serve`` option, e.g. ``--port``; None: environment only.
    flag: str | None = None
    choices: tuple[str, ...] = ()
    #: How the default reads in the documentation, when its value alone would mislead.
    shown_default: str | None = None


def _setting(
    default: Any,
    env: str,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple[str, ...] = (),
    shown_default: str | None = None,
) -> Any:
    return field(default=default, metadata={"setting": Meta(env, help, flag, choices, shown_default)})


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        DEFAULT_DATABASE_URL,
        "SCIMWARD_DATABASE_URL",
        "`sqlite:///PATH` or `postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB` (every command)",
        flag="--database-url",
    )
    host: str = _setting("127.0.0.1", "SCIMWARD_HOST", "interface `serve` listens on", flag="--host")
    port: int = _setting(8000, "SCIMWARD_PORT", "TCP port", flag="--port")
    workers: int = _setting(1, "SCIMWARD_WORKERS", "API processes; more than one needs PostgreSQL", flag="--workers")
    public_url: str | None = _setting(
        None,
        "SCIMWARD_PUBLIC_URL",
        "the SCIM base URL clients see, behind a proxy (e.g. `https://scim.example.com/scim/v2`): printed at "
        "start, used in `meta.location` and `$ref`",
        flag="--public-url",
        shown_default="from each request",
    )
    max_body_bytes: int = _setting(
        MIB, "SCIMWARD_MAX_BODY_BYTES", "larger request bodies get 413", flag="--max-body-bytes"
    )
    max_results: int = _setting(
        1000,
        "SCIMWARD_MAX_RESULTS",
        "the most resources one list page returns (`filter.maxResults`)",
        flag="--max-results",
    )
    default_pagination: str = _setting(
        "cursor",
        "SCIMWARD_DEFAULT_PAGINATION",
        "paging of a list request that names neither `cursor` nor `startIndex`",
        flag="--default-pagination",
        choices=("cursor", "index"),
    )
    bulk_max_operations: int = _setting(
        1000,
        "SCIMWARD_BULK_MAX_OPERATIONS",
        "the most operations one `POST /Bulk` may carry (RFC 7644 3.7.4)",
        flag="--bulk-max-operations",
    )
    bulk_max_payload_bytes: int = _setting(
        4 * MIB, "SCIMWARD_BULK_MAX_PAYLOAD_BYTES", "the largest `POST /Bulk` body", flag="--bulk-max-payload-bytes"
    )
    patch_max_operations: int = _setting(
        1000,
        "SCIMWARD_PATCH_MAX_OPERATIONS",
        "the most operations one PATCH may carry; beyond it 400 `tooMany` (docs/security.md)",
        flag="--patch-max-operations",
    )
    agent_extension_in_config: bool = _setting(
        False,
        "SCIMWARD_AGENT_EXTENSION_IN_CONFIG",
        "also announce `agentExtension` in `/ServiceProviderConfig` (draft-abbey-scim-agent-extension); off by "
        "default because strict RFC 7643 clients refuse members the RFC does not define (docs/non-human-identities.md)",
        flag="--agent-extension-in-config",
    )
    limits_in_config: bool = _setting(
        False,
        "SCIMWARD_LIMITS_IN_CONFIG",
        "also advertise the request limits (PATCH operations, filter size, ...) in `/ServiceProviderConfig`, as the "
        "extension `urn:scimward:params:scim:schemas:extension:limits:2.0:ServiceProviderConfig`; off by default "
        "because strict RFC 7643 clients refuse members the RFC does not define (docs/security.md)",
        flag="--limits-in-config",
    )
    nhi_user_types: str = _setting(
        "ServiceAccount,Service,Bot,Machine",
        "SCIMWARD_NHI_USER_TYPES",
        "comma-separated `userType` values (case-insensitive) that make a User a non-human identity "
        "(docs/non-human-identities.md)",
        flag="--nhi-user-types",
    )
    nhi_name_patterns: str = _setting(
        "svc-*,svc_*,*-svc,sa-*,bot-*,*-bot,*[[]bot[]]",
        "SCIMWARD_NHI_NAME_PATTERNS",
        "comma-separated shell patterns (case-insensitive): orphaned accounts whose name matches are listed as "
        "unmanaged NHIs (`scimward nhi unmanaged`)",
        flag="--nhi-name-patterns",
    )
    run_worker: bool = _setting(
        True,
        "SCIMWARD_WORKER",
        "push changes to targets from the API process too (`--no-worker`: leave it to `scimward worker`)",
        flag="--worker",
    )
    source_imports: str | None = _setting(
        None,
        "SCIMWARD_SOURCE_IMPORTS",
        "HR exports `serve` imports when they change, `NAME=PATH[,NAME=PATH]` (sources added with `scimward source "
        "add NAME --kind csv|json`), then deprovisions due terminations and runs the three-way check "
        "(docs/sources.md)",
        shown_default="none",
    )
    source_check_seconds: int = _setting(
        3600,
        "SCIMWARD_SOURCE_CHECK_SECONDS",
        "how often `serve` looks at `SCIMWARD_SOURCE_IMPORTS` and runs the sources' check",
    )
    log_level: str = _setting(
        "info",
        "SCIMWARD_LOG_LEVEL",
        "`debug` shows every dialect rewrite a client's request needed; it applies to "
        "scimward's own loggers, the libraries' stay at `info`",
        flag="--log-level",
        choices=("debug", "info", "warning", "error"),
    )
    log_format: str = _setting(
        "json",
        "SCIMWARD_LOG_FORMAT",
        "`json`: every log line, uvicorn's too, is one JSON object; `text` for reading",
        flag="--log-format",
        choices=("json", "text"),
    )
    console_oidc_issuer: str | None = _setting(
        None,
        "SCIMWARD_CONSOLE_OIDC_ISSUER",
        "the console's OpenID Connect provider (its issuer URL; discovery at `/.well-known/openid-configuration`)",
        flag="--console-oidc-issuer",
        shown_default="none: local administrators only",
    )
    console_oidc_client_id: str | None = _setting(
        None,
        "SCIMWARD_CONSOLE_OIDC_CLIENT_ID",
        "the console's client id at that provider",
        flag="--console-oidc-client-id",
        shown_default="none",
    )
    console_oidc_client_secret: str | None = _setting(
        None,
        "SCIMWARD_CONSOLE_OIDC_CLIENT_SECRET",
        "the console's client secret at that provider (environment only: never on a command line)",
        shown_default="none",
    )
    console_oidc_roles: str = _setting(
        "",
        "SCIMWARD_CONSOLE_OIDC_ROLES",
        "which signed-in people get which console role: `CLAIM=VALUE:ROLE`, comma-separated (e.g. "
        "`groups=idm-admins:admin,groups=auditors:viewer`); a claim that is a list matches when it holds the "
        "value; the highest matching role wins, and a person no rule matches cannot sign in",
        flag="--console-oidc-roles",
        shown_default="none",
    )
    console_session_minutes: int = _setting(
        480,
        "SCIMWARD_CONSOLE_SESSION_MINUTES",
        "a console session ends this long after sign-in",
        flag="--console-session-minutes",
    )
    console_idle_minutes: int = _setting(
        30,
        "SCIMWARD_CONSOLE_IDLE_MINUTES",
        "a console session ends after this long without a request",
        flag="--console-idle-minutes",
    )
    console_secure_cookies: bool = _setting(
        True,
        "SCIMWARD_CONSOLE_SECURE_COOKIES",
        "mark the console's cookies `Secure` (browsers send them over HTTPS and to loopback only); turn it off "
        "only behind nothing but plain HTTP on a trusted network",
        flag="--console-secure-cookies",
    )

    catch_all_percent: int = _setting(
        80,
        "SCIMWARD_CATCH_ALL_PERCENT",
        "a group whose members are more than this percentage of the active users is a catch-all group finding "
        "(docs/access-reviews.md)",
    )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            meta: Meta = item.metadata["setting"]
            value = getattr(self, item.name)
            if meta.choices and value not in meta.choices:
                raise SettingsError(f"{meta.env} (or {meta.flag}) is {value!r}; use one of {', '.join(meta.choices)}")
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise SettingsError(f"{meta.env} (or {meta.flag}) is {value}; it cannot be negative")
        if not 0 < self.port < 65536:
            raise SettingsError(f"SCIMWARD_PORT (or --port) is {self.port}; use a port from 1 to 65535")
        if self.workers < 1:
            raise SettingsError(f"SCIMWARD_WORKERS (or --workers) is {self.workers}; use 1 or more")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(
                    f"SCIMWARD_PUBLIC_URL (or --public-url) is {self.public_url!r}; use the absolute "
                    "SCIM base URL clients see, e.g. https://scim.example.com/scim/v2"
                )
        for entry in (self.source_imports or "").split(","):
            name, sep, path = entry.partition("=")
            if entry.strip() and not (sep and name.strip() and path.strip()):
                raise SettingsError(f"SCIMWARD_SOURCE_IMPORTS is NAME=PATH, comma-separated; not {entry.strip()!r}")
        role_mapping(self.console_oidc_roles)
        if self.console_oidc_issuer and not self.console_oidc_client_id:
            raise SettingsError("SCIMWARD_CONSOLE_OIDC_ISSUER is set without SCIMWARD_CONSOLE_OIDC_CLIENT_ID")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``SCIMWARD_*`` variables; the defaults for the others."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            meta: Meta = item.metadata["setting"]
            raw = env.get(meta.env)
            if raw is not None and raw.strip() != "":
                values[item.name] = parse(item, raw.strip())
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads back as these settings (unset ones left out)."""
        out: dict[str, str] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                out[item.metadata["setting"].env] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out


#: The console's roles, least to most (``store.auth.ROLES`` is the same tuple).
CONSOLE_ROLES = ("viewer", "reviewer", "approver", "admin")


def role_mapping(text: str) -> list[tuple[str, str, str]]:
    """``console_oidc_roles`` as (claim, value, role) rules; a SettingsError names what is wrong."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        claim, equals, rest = part.partition("=")
        value, colon, role = rest.rpartition(":")
        if not equals or not colon or not claim.strip() or not value.strip():
            raise SettingsError(f"SCIMWARD_CONSOLE_OIDC_ROLES: {part!r} is not CLAIM=VALUE:ROLE")
        if role.strip() not in CONSOLE_ROLES:
            raise SettingsError(
                f"SCIMWARD_CONSOLE_OIDC_ROLES: {part!r} names role {role.strip()!r}; use one of "
                f"{', '.join(CONSOLE_ROLES)}"
            )
        rules.append((claim.strip(), value.strip(), role.strip()))
    return rules


def fields() -> list[tuple[dataclasses.Field[Any], Meta]]:
    return [(item, item.metadata["setting"]) for item in dataclasses.fields(Settings)]


def value_type(item: dataclasses.Field[Any]) -> type:
    """``str``, ``int`` or ``bool``: the type a field's value has when it is set."""
    text = str(item.type).replace(" ", "")
    for name, kind in (("bool", bool), ("int", int)):
        if text in {name, f"{name}|None"}:
            return kind
    return str


def parse(item: dataclasses.Field[Any], raw: str) -> Any:
    meta: Meta = item.metadata["setting"]
    kind = value_type(item)
    if kind is bool:
        if raw.lower() in TRUE | FALSE:
            return raw.lower() in TRUE
        raise SettingsError(f"{meta.env} is {raw!r}; use 1 or 0 (true/false, yes/no, on/off)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{meta.env} is {raw!r}; it must be a whole number") from None
    return raw


def _shown_default(item: dataclasses.Field[Any], meta: Meta) -> str:
    if meta.shown_default is not None:
        return meta.shown_default
    if isinstance(item.default, bool):
        return "on" if item.default else "off"
    return f"`{item.default}`"


def _flag(item: dataclasses.Field[Any], meta: Meta) -> str:
    if meta.flag is None:
        return ""
    if value_type(item) is bool:
        return f"`{meta.flag}/--no-{meta.flag.removeprefix('--')}`"
    return f"`{meta.flag}`"


def markdown_table() -> str:
    """The settings table of docs/configuration.md."""
    lines = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for item, meta in fields():
        choices = f" (one of {', '.join(f'`{c}`' for c in meta.choices)})" if meta.choices else ""
        lines.append(f"| {_flag(item, meta)} | `{meta.env}` | {_shown_default(item, meta)} | {meta.help}{choices} |")
    return "\n".join(lines) + "\n"


TABLE_START = "<!-- settings table: generated from src/scimward/settings.py by `python3 tasks.py docs` -->"
TABLE_END = "<!-- end of the settings table -->"


def with_table(document: str) -> str:
    """``document`` with the text between the table's markers replaced by ``markdown_table()``."""
    start, end = document.index(TABLE_START) + len(TABLE_START), document.index(TABLE_END)
    return document[:start] + "\n" + markdown_table() + document[end:]


if __name__ == "__main__":  # python -m scimward.settings docs/configuration.md
    import sys
    from pathlib import Path

    target = Path(sys.argv[1])
    target.write_text(with_table(target.read_text(encoding="utf-8")), encoding="utf-8")
