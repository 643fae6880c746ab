"""``/metrics`` names every target and its failures: it needs a token with the metrics scope (issue 11, item 6)."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import LiveServer, issue_token


def test_metrics_need_a_token_with_the_metrics_scope(live_server: LiveServer) -> None:
    scraper = issue_token(live_server.database_url, f"scraper-{uuid.uuid4().hex[:8]}", scopes="metrics")
    root = live_server.base_url.removesuffix("/scim/v2")
    with httpx.Client(base_url=root, timeout=30) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scimward_unknown"}).status_code == 401
        scim_only = client.get("/metrics", headers={"Authorization": f"Bearer {live_server.token}"})
        assert scim_only.status_code == 403
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert scraped.status_code == 200 and "# TYPE" in scraped.text
