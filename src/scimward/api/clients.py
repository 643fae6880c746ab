"""Who is on the other end of a request."""

from __future__ import annotations

from starlette.requests import Request


def client_address(request: Request) -> str | None:
    """The client's IP address as the server saw it (behind a proxy, the proxy's, unless uvicorn is told
    to trust its ``X-Forwarded-For``: ``--forwarded-allow-ips``)."""
    return request.client.host if request.client is not None else None
