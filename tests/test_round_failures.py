"""The background loops (propagate, the schedules) while the database is down: one warning line a
round, no traceback; a bug keeps its traceback (issue 12: no traceback for an expected failure)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
import structlog

from scimward.store.failures import log_round_failure
from tests.conftest import free_port


def test_the_database_down_is_one_warning_and_a_bug_keeps_its_traceback() -> None:
    engine = sa.create_engine(f"postgresql+psycopg://scimward:S3cret@127.0.0.1:{free_port()}/scimward")
    with pytest.raises(sa_exc.OperationalError) as refused:
        engine.connect()
    log = structlog.get_logger("scimward.sync.propagate")
    with structlog.testing.capture_logs() as lines:
        log_round_failure(log, "propagate round failed", refused.value)
        log_round_failure(log, "propagate round failed", KeyError("a bug"))
    down, bug = lines
    assert down["log_level"] == "warning" and "exc_info" not in down
    assert down["error"].startswith("the database is unreachable: connection failed") and "S3cret" not in str(down)
    assert bug["log_level"] == "error" and isinstance(bug["exc_info"], KeyError)
