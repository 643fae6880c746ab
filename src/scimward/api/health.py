"""Health and metrics: ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus).

Liveness answers from the process alone, so an orchestrator restarts a process only when the
process itself is stuck, never because the database is; readiness touches the database (and checks
that its schema is the one this process was built for), so a process that cannot serve is taken
out of the load balancer instead. ``/metrics`` holds counts a stranger should not read (targets'
names, failure rates): it answers a bearer token with the ``metrics`` scope (or ``admin``).
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scimward.api.clients import client_address
from scimward.governance.snapshots import publish_latest
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.schema_version import shipped_revisions

#: Longer than this, and the database counts as not ready: a probe must answer within its own timeout.
READY_TIMEOUT_SECONDS = 2.0
_BEARER = {"WWW-Authenticate": 'Bearer realm="scimward metrics"'}


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _unready(reason: str) -> Response:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


def routes(database: Database, tokens: TokenStore) -> list[Route]:
    _, heads = shipped_revisions()

    async def readyz(_request: Request) -> Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), database.read() as conn:
                rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                current = {str(row[0]) for row in rows}
        except TimeoutError:
            return _unready(f"the database did not answer within {READY_TIMEOUT_SECONDS:g} s")
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            return _unready(f"the database failed: {reason[0] if reason else type(exc).__name__}")
        if current != heads:
            return _unready(
                f"the schema is at {', '.join(sorted(current)) or 'none'}, this process needs "
                f"{', '.join(sorted(heads))}: run scimward db upgrade"
            )
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
        info = await tokens.verify(presented) if presented else None
        if presented and info is None:
            await tokens.refused(presented, request.url.path, None, client_address(request))
        elif info is not None and not info.allows("metrics"):
            await tokens.refused(presented, request.url.path, "scope", client_address(request))
        if info is None:
            return JSONResponse(
                {
                    "error": "unauthorized",
                    "detail": "a bearer token with the metrics scope is required "
                    "(scimward token create --scope metrics)",
                },
                status_code=401,
                headers=_BEARER,
            )
        if not info.allows("metrics"):
            return JSONResponse(
                {"error": "forbidden", "detail": f"the token {info.name!r} lacks the metrics scope"}, status_code=403
            )
        await publish_latest(database)  # the evidence gauges, from today's snapshot (one row)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
