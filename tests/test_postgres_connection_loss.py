"""After PostgreSQL drops the hub's connections, the very next request succeeds (issue 11, item 5).

``pg_terminate_backend`` is what a server restart, a failover or an administrator does to the hub's
pooled connections. Before the fix, every pooled connection failed once: ten writes in a row
answered 500 before one succeeded.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from tests.conftest import POSTGRES_URL, ServerThread, issue_token
from tests.scimdata import patch, user


def _terminate_connections(database: str) -> int:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": database},
                ).all()
            )
    finally:
        admin.dispose()


def test_the_first_requests_after_the_connections_are_terminated_succeed(hub_url: str) -> None:
    if not hub_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose")
    token = issue_token(hub_url, "loss")
    with ServerThread(Settings(database_url=hub_url, run_worker=False)) as server:
        base = f"http://127.0.0.1:{server.port}/scim/v2"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            ids = [client.post("/Users", json=user(f"loss-{i}")).json()["id"] for i in range(4)]

            def warm(i: int) -> int:  # enough requests at once to fill both connection pools
                with httpx.Client(base_url=base, headers=headers, timeout=30) as own:
                    return own.get("/Users", params={"filter": f'userName sw "loss-{i % 4}"'}).status_code

            with ThreadPoolExecutor(12) as pool:
                assert set(pool.map(warm, range(48))) == {200}
            assert _terminate_connections(sa.make_url(hub_url).database or "") >= 2
            statuses = [
                client.get(f"/Users/{ids[0]}").status_code,
                client.post("/Users", json=user("loss-after")).status_code,
                client.patch(
                    f"/Users/{ids[1]}", json=patch({"op": "replace", "path": "title", "value": "x"})
                ).status_code,
                client.get("/Users", params={"filter": 'userName sw "loss-"'}).status_code,
                client.delete(f"/Users/{ids[2]}").status_code,
            ]
            statuses += [client.get(f"/Users/{ids[3]}").status_code for _ in range(10)]
    assert statuses == [200, 201, 200, 200, 204] + [200] * 10
