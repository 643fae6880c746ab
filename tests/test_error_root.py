"""One error root: every exception class scimward defines is a ``ScimwardError``, and the HTTP edges'
table answers each family with its status (``scimward/errors.py`` draws the tree)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import scimward
from scimward.api.errors import ADMIN_NAMES, as_scim_error
from scimward.errors import ConfigurationError, ScimwardError
from scimward.governance.catalogue import UnknownKind
from scimward.policy.document import PolicyError
from scimward.policy.errors import ApprovalError, UnknownSubject
from scimward.policy.plans import ConfigChangeHeld, Plan
from scimward.scim.errors import NotFound, ScimError, ServiceUnavailable
from scimward.settings import SettingsError
from scimward.store.errors import DatabaseUnavailable, DatabaseUrlError
from scimward.sync.errors import AuthError
from scimward.sync.secrets import SecretKeyError
from scimward.web.errors import answer_to, notice_of


def _project_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module in pkgutil.walk_packages(scimward.__path__, "scimward."):
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        loaded = importlib.import_module(module.name)
        found += [
            value
            for value in vars(loaded).values()
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.name
        ]
    return found


def test_every_error_scimward_defines_is_under_the_root() -> None:
    classes = _project_exceptions()
    assert len(classes) > 30  # the walk found the project's errors, not nothing
    assert [c.__qualname__ for c in classes if not issubclass(c, ScimwardError)] == []


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        (NotFound("no such user"), 404, None),
        (UnknownSubject("no change abc"), 404, None),
        (ApprovalError("four eyes: not your own change"), 409, None),
        (PolicyError("rules: a list"), 400, None),
        (UnknownKind("no finding kind 'x'"), 400, None),
        (DatabaseUnavailable("cannot open the database postgresql://u:***@db.internal/x"), 503, None),
        (AuthError("401: token refused", status=401), 502, "target_error"),
        (SecretKeyError("SCIMWARD_SECRET_KEY does not hold a valid key"), 500, "secret_key"),
        (SettingsError("SCIMWARD_PORT must be a number"), 500, None),
    ],
)
def test_the_http_edges_answer_each_family_with_its_status(error: ScimwardError, status: int, name: str | None) -> None:
    answer = as_scim_error(error)
    assert isinstance(answer, ScimError) and answer.status == status
    assert ADMIN_NAMES.get(type(answer)) == name


def test_a_database_failure_names_no_host_to_the_client() -> None:
    answer = as_scim_error(DatabaseUnavailable("cannot open the database postgresql://u:***@db.internal/x"))
    assert isinstance(answer, ServiceUnavailable) and "db.internal" not in answer.detail


def test_configuration_errors_stay_value_errors() -> None:
    """Code that caught ValueError from a settings, URL or policy parser still does."""
    for cls in (SettingsError, DatabaseUrlError, PolicyError, SecretKeyError):
        assert issubclass(cls, ConfigurationError) and issubclass(cls, ValueError)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("no such user"), 404),
        (UnknownSubject("no change abc"), 404),
        (ApprovalError("four eyes: not your own change"), 409),
        (ConfigChangeHeld("c-1", Plan("app", accounts=10, deprovision=9)), 202),
        (PolicyError("rules: a list"), 400),
        (UnknownKind("no finding kind 'x'"), 400),
        (DatabaseUnavailable("cannot open the database postgresql://u:***@db.internal/x"), 503),
        (AuthError("401: token refused", status=401), 502),
        (SecretKeyError("SCIMWARD_SECRET_KEY does not hold a valid key"), 500),
        (SettingsError("SCIMWARD_PORT must be a number"), 500),
    ],
)
def test_the_console_answers_each_family_with_its_status(error: ScimwardError, status: int) -> None:
    """The console's one table (web/errors.py) agrees with the HTTP edges' on every family but a held
    configuration change, which the console shows as what it is: accepted, waiting for a second person."""
    answer = answer_to(error)
    assert answer.status == status and answer.title
    assert "db.internal" not in answer.message
    if status < 500:
        assert notice_of(error) == answer.message
    else:
        with pytest.raises(type(error)):
            notice_of(error)
