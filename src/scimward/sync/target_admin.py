"""Target administration: the one service behind ``scimward target ...`` and ``/admin/v1/targets``.

It checks what an admin asks for (a name, an http(s) base URL, a credential, a configuration whose
filters parse), keeps the credential encrypted (``sync.secrets``) and answers with public views:
dicts that never hold the credential. Where a target's own words are shown (its last error, a
connection test), any echo of the credential is redacted, since some targets repeat the request
they refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from ipaddress import ip_address
from secrets import token_hex
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scimward.scim.errors import InvalidValue, NotFound, UniquenessError
from scimward.store import Direct
from scimward.store.database import Database
from scimward.store.provisioning import Outbox, TargetRepository, TargetRow, link_counts
from scimward.sync.errors import AuthError, TargetError, TransientError
from scimward.sync.mapping import DEFAULT_USER_RULES
from scimward.sync.profile import Capabilities
from scimward.sync.profile import check as check_profile
from scimward.sync.secrets import SecretBox, SecretKeyError
from scimward.sync.targets import AttributeRule, DeprovisionMode, ReconcilePolicy, Target, TargetConfig

if TYPE_CHECKING:
    from scimward.policy.plans import Plan
    from scimward.sync.client import TargetClient

#: Target names follow token names: they appear in URLs, metrics labels and log lines.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_TOKEN_LENGTH = 8192
REDACTED = "[redacted]"
HIDDEN = "(hidden: without the secret key it cannot be checked for an echoed credential)"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidValue(
            f"target name {name!r}: use letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit"
        )
    return name


def check_url(url: str) -> str:
    """The target's SCIM base URL, without a trailing slash."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise InvalidValue(f"the target URL {url!r} is not a valid URL: {exc}") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: it holds a credential, which belongs in the encrypted token instead.
        raise InvalidValue(
            "the target URL must not hold credentials (user:password@host); give the bearer token as the target's token"
        )
    if parts.scheme not in ("https", "http"):
        raise InvalidValue(f"the target URL {url!r} must start with https:// (or http://)")
    if not parts.hostname:
        raise InvalidValue(f"the target URL {url!r} has no host")
    if parts.query or parts.fragment:
        raise InvalidValue(f"the target URL {url!r} must be the SCIM base URL, without ?query or #fragment")
    return url.rstrip("/")


def is_plain_http(url: str) -> bool:
    """True when the credential would cross a network unencrypted (http to a host other than loopback)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def check_token(token: str) -> str:
    """The bearer token as the target issued it (surrounding whitespace, as a file's last newline, dropped)."""
    token = token.strip()
    if not token:
        raise InvalidValue("the target's token is empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidValue(f"the target's token is longer than {MAX_TOKEN_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise InvalidValue("the target's token must be one word: no spaces, line breaks or control characters")
    return token


# -- configuration from JSON (the admin API) ----------------------------------------------------------


def parse_config(data: Any) -> TargetConfig:
    """A configuration from untrusted JSON, each known key checked for its type; then validated.

    A key that is null takes its default.
    """
    if not isinstance(data, dict):
        raise InvalidValue("the target configuration must be a JSON object")
    data = {key: value for key, value in data.items() if value is not None}
    _check_types(data)
    config = TargetConfig.from_json(data)
    validate(config)
    return config


#: The ``--option`` settings (``TargetConfig.extra``) scimward reads; others are kept but do nothing.
KNOWN_OPTIONS = (
    "reconcile_every",
    "reconcile_repair",
    "orphans",
    "quarantine_after",
    "poison_after",
    "profile",
    "capabilities",
)


def validate(config: TargetConfig) -> None:
    """``config.validate()`` and the options propagate and reconcile read, so that a value they could not
    use (``reconcile_every=banana``, ``orphans=nuke``) is refused when given, not when a worker or the
    schedule first reads it."""
    config.validate()
    extra = dict(config.extra)
    check_profile(extra)
    ReconcilePolicy.from_config(extra)
    for key in ("quarantine_after", "poison_after"):
        value = extra.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidValue(f"{key} must be a whole number, 1 or more, not {value!r}")


def merge_config(current: TargetConfig, changes: Any) -> TargetConfig:
    """``current`` with ``changes`` applied as a JSON merge patch (RFC 7396): null resets a key to its default."""
    if not isinstance(changes, dict):
        raise InvalidValue("the target configuration must be a JSON object")
    return parse_config({**current.to_json(), **changes})


def _check_types(data: Mapping[str, Any]) -> None:
    check_profile(data)  # ``profile`` and ``capabilities``: what propagate could not follow is refused now
    for key in ("scope", "group_scope", "nhi_scope"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidValue(f"{key} must be a SCIM filter as a string")
    for key in ("push_groups", "push_nhis"):
        if key in data and not isinstance(data[key], bool):
            raise InvalidValue(f"{key} must be true or false")
    for key in ("environment", "nhi_user_type"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidValue(f"{key} must be a string")
    modes = {mode.value for mode in DeprovisionMode}
    if "deprovision" in data and not (isinstance(data["deprovision"], str) and data["deprovision"] in modes):
        raise InvalidValue(f"deprovision must be one of {', '.join(m.value for m in DeprovisionMode)}")
    days = data.get("tombstone_days", 0)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidValue("tombstone_days must be a whole number of days, 0 or more")
    _check_mapping(data.get("mapping"))


def _check_mapping(mapping: Any) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, list):
        raise InvalidValue('mapping must be a list of rules like {"target": ..., "source": ...}')
    for rule in mapping:
        if not isinstance(rule, dict) or not isinstance(rule.get("target"), str) or not rule["target"]:
            raise InvalidValue('every mapping rule needs a target attribute: {"target": ..., "source": ...}')
        if ("source" in rule) == ("constant" in rule):
            raise InvalidValue(f"the mapping rule for {rule['target']!r} needs exactly one of source and constant")
        if "source" in rule and (not isinstance(rule["source"], str) or not rule["source"]):
            raise InvalidValue(f"the mapping rule for {rule['target']!r} needs a source attribute path")
        unknown = set(rule) - {"target", "source", "constant"}
        if unknown:
            raise InvalidValue(
                f"the mapping rule for {rule['target']!r} has unknown keys: {', '.join(sorted(unknown))}"
            )


# -- mapping edits (the command line) ------------------------------------------------------------------


def parse_constant(text: str) -> Any:
    """A constant as typed: a JSON literal (``true``, ``42``, ``"x"``, ``[...]``) or else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def compose_mapping(
    base: tuple[AttributeRule, ...] | None,
    rules: Sequence[AttributeRule] = (),
    drops: Sequence[str] = (),
    *,
    only: bool = False,
) -> tuple[AttributeRule, ...] | None:
    """A mapping edited: ``rules`` replace the rule for the same target attribute or are added, ``drops`` removed.

    ``base`` None is the default mapping; ``only`` starts from no rules at all. Without edits the
    base is returned as it was, so a target on the default mapping follows the default as it evolves.
    """
    if not rules and not drops and not only:
        return base
    start = () if only else (DEFAULT_USER_RULES if base is None else base)
    replaced = {rule.target.lower() for rule in rules} | {target.lower() for target in drops}
    kept = [rule for rule in start if rule.target.lower() not in replaced]
    return (*kept, *rules)


# -- public views ---------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def _redactor(token: str | None) -> Callable[[str | None], str | None]:
    def redact(text: str | None) -> str | None:
        return text.replace(token, REDACTED) if text and token else text

    return redact


def public_view(
    row: TargetRow,
    config: TargetConfig,
    *,
    pending: tuple[int, int],
    links: dict[str, int],
    redact: Callable[[str | None], str | None] = lambda text: text,
) -> dict[str, Any]:
    """What anyone allowed to administer targets may see of one: everything but the credential."""
    return {
        "name": row.name,
        "url": row.base_url,
        "created": _iso(row.created),
        "status": "quarantined" if row.quarantined else "active",
        "quarantine": None
        if row.quarantined is None
        else {"since": _iso(row.quarantined), "reason": redact(row.quarantine_reason)},
        "consecutive_failures": row.consecutive_failures,
        "last_error": None
        if row.last_error is None
        else {"at": _iso(row.last_error_at), "message": redact(row.last_error)},
        "config": config.to_json(),
        "outbox": {"pending": pending[0], "failing": pending[1]},
        "links": links,
    }


def supports(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a ServiceProviderConfig (RFC 7643 section 5) says the target can do."""

    def feature(name: str) -> Mapping[str, Any]:
        value = config.get(name)
        return value if isinstance(value, dict) else {}

    pagination = feature("pagination")
    return {
        "patch": feature("patch").get("supported") is True,
        "bulk": feature("bulk").get("supported") is True,
        "bulk_max_operations": feature("bulk").get("maxOperations"),
        "filter": feature("filter").get("supported") is True,
        "filter_max_results": feature("filter").get("maxResults"),
        "sort": feature("sort").get("supported") is True,
        "etag": feature("etag").get("supported") is True,
        "change_password": feature("changePassword").get("supported") is True,
        # RFC 9865: cursor paging only when announced; index paging is RFC 7644's default.
        "pagination": {"cursor": pagination.get("cursor") is True, "index": pagination.get("index", True) is True},
    }


def _schemes(config: Mapping[str, Any]) -> list[str]:
    schemes = config.get("authenticationSchemes")
    if not isinstance(schemes, list):
        return []
    names = (s.get("type") or s.get("name") for s in schemes if isinstance(s, dict))
    return [str(name) for name in names if name]


def _failed(check: str, exc: TargetError, redact: Callable[[str | None], str | None]) -> dict[str, Any]:
    return {
        "check": check,
        "ok": False,
        "error": type(exc).__name__,
        "status": exc.status,
        "detail": redact(exc.detail),
    }


class TargetAdmin:
    """Add, change, inspect, test and remove targets."""

    def __init__(self, database: Database, secrets: SecretBox | None = None) -> None:
        self.db = database
        self.repository = TargetRepository(database)
        self.outbox = Outbox(database)
        self.secrets = secrets or SecretBox()
        self.direct = Direct(database)

    async def add(
        self, name: str, url: str, token: str, config: TargetConfig | None = None, actor: str = "admin"
    ) -> Target:
        config = config or TargetConfig()
        check_name(name)
        url = check_url(url)
        token = check_token(token)
        validate(config)
        try:
            await self.repository.by_name(name)
        except NotFound:
            pass
        else:
            raise UniquenessError(f"a target named {name!r} already exists")
        row = await self.repository.add(name, url, self.secrets.encrypt(token), config.to_json(), actor=actor)
        return Target.from_row(row)

    async def update(
        self,
        name: str,
        *,
        url: str | None = None,
        token: str | None = None,
        config: TargetConfig | None = None,
        actor: str = "admin",
        source: str = "cli",
    ) -> Target:
        """Change what is given; the rest stays. A configuration change that decides what the target
        holds passes the gate first (``policy.plans``): held, it raises ``ConfigChangeHeld``."""
        values: dict[str, Any] = {}
        if url is not None:
            values["base_url"] = check_url(url)
        if token is not None:
            values["token_encrypted"] = self.secrets.encrypt(check_token(token))
        if config is not None:
            validate(config)
            values["config"] = config.to_json()
            from scimward.policy.plans import gate_config, planned  # the gate: only a change needs it

            current = await self.repository.by_name(name)
            if planned(current.config) != planned(values["config"]):
                await gate_config(
                    self.db, self.direct, current.id, name, current.config, values["config"], actor, source
                )
        row = (
            await self.repository.update(name, actor=actor, **values) if values else await self.repository.by_name(name)
        )
        return Target.from_row(row)

    async def plan(self, name: str, config: TargetConfig | None) -> Plan:
        """What changing the configuration to ``config`` (None: removing the target) would do."""
        from scimward.policy.plans import plan_config

        current = await self.repository.by_name(name)
        if config is not None:
            validate(config)
        return await plan_config(
            self.db, current.id, name, current.config, None if config is None else config.to_json()
        )

    async def get(self, name: str) -> Target:
        return Target.from_row(await self.repository.by_name(name))

    async def list(self) -> list[dict[str, Any]]:
        return [await self._view(row) for row in await self.repository.all()]

    async def show(self, name: str) -> dict[str, Any]:
        return await self._view(await self.repository.by_name(name))

    async def remove(self, name: str, actor: str = "admin") -> None:
        """Forget the target, its outbox rows and links; the accounts in the target stay as they are.
        The removal passes the gate like a configuration change (it ends every account's management)."""
        from scimward.policy.plans import gate_config

        current = await self.repository.by_name(name)
        await gate_config(self.db, self.direct, current.id, name, current.config, None, actor)
        await self.repository.remove(name, actor=actor)

    async def resume(self, name: str) -> dict[str, Any]:
        """Lift a quarantine: the target receives again, starting with what it missed."""
        return await self._view(await self.repository.resume(name))

    async def test(self, name: str) -> dict[str, Any]:
        """Read the target's ServiceProviderConfig and try the credential, reporting rather than raising.

        The credential is tried with a search that matches no one, so the test reads nothing real
        and changes nothing.
        """
        from scimward.sync.client import TargetClient, eq_filter  # httpx: only what talks to the target

        row = await self.repository.by_name(name)
        token = self.secrets.decrypt(row.token_encrypted)
        redact = _redactor(token)
        report: dict[str, Any] = {
            "target": row.name,
            "url": row.base_url,
            "ok": False,
            "checks": [],
            "supports": None,
            "authentication_schemes": [],
        }
        started = time.monotonic()
        async with TargetClient(row.base_url, token) as client:
            try:
                config = await client.service_provider_config()
            except TargetError as exc:
                report["checks"].append(_failed("service_provider_config", exc, redact))
                unreachable = isinstance(exc, TransientError) and exc.status is None
            else:
                report["checks"].append({"check": "service_provider_config", "ok": True})
                report["supports"] = supports(config)
                report["authentication_schemes"] = _schemes(config)
                unreachable = False
            if not unreachable:
                probe = eq_filter("userName", f"scimward-connection-test-{token_hex(8)}")
                try:
                    await client.find("Users", probe, count=1)
                except TargetError as exc:
                    report["checks"].append(_failed("credential", exc, redact))
                    report["credential"] = "rejected" if isinstance(exc, AuthError) else "unknown"
                else:
                    report["checks"].append({"check": "credential", "ok": True})
                    report["credential"] = "accepted"
                    report["capabilities"] = await self._probe(row, client, report, redact)
            else:
                report["credential"] = "unknown"
        report["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        # The credential is what propagation needs; a target without a usable ServiceProviderConfig
        # still works (the client falls back to RFC 7644 defaults), so that check only informs.
        report["ok"] = report["credential"] == "accepted"
        return report

    async def _probe(
        self, row: TargetRow, client: TargetClient, report: dict[str, Any], redact: Callable[[str | None], str | None]
    ) -> dict[str, Any]:
        """Find out by reading which lookups the target evaluates (``sync.probe``), keep what was learned
        in its capability profile with the time of the probe, and answer the profile as it now stands."""
        from scimward.sync.probe import probe_filters, refresh

        try:
            filters = await probe_filters(client)
        except TargetError as exc:
            report["checks"].append(_failed("filters", exc, redact))
            return Capabilities.from_config(row.config).to_json()
        report["checks"].append({"check": "filters", "ok": True, "evaluated": filters})
        return (await refresh(self.db, row.id, row.config, client, filters)).to_json()

    def client(self, target: Target) -> TargetClient:
        """A client for the target, holding its decrypted credential."""
        from scimward.sync.client import TargetClient

        return TargetClient(target.row.base_url, self.secrets.decrypt(target.row.token_encrypted))

    async def _view(self, row: TargetRow) -> dict[str, Any]:
        return public_view(
            row,
            TargetConfig.from_json(row.config),
            pending=await self.outbox.pending(row.id),
            links=await link_counts(self.db, row.id),
            redact=self._redactor(row),
        )

    def _redactor(self, row: TargetRow) -> Callable[[str | None], str | None]:
        if row.last_error is None and row.quarantine_reason is None:
            return _redactor(None)
        try:
            return _redactor(self.secrets.decrypt(row.token_encrypted))
        except SecretKeyError:
            # Without the key nothing can be checked for an echoed credential: hide the target's words.
            return lambda text: None if text is None else HIDDEN
