"""A fault-injecting HTTP reverse proxy on 127.0.0.1, for tests of what propagate does when a target misbehaves.

A raw ASGI app under uvicorn in a thread of the test process forwards every request, with
``httpx.AsyncClient``, to a real downstream SCIM server. Tests switch its behaviour at runtime:

- ``passthrough()``: forward everything;
- ``fail(status, count, retry_after)``: answer ``count`` requests (``None``: all, until switched)
  with ``status`` and a SCIM Error body, optionally with ``Retry-After``;
- ``slow(seconds, count, forward)``: hold the answer for ``seconds`` (longer than the client's
  timeout makes a timeout); with ``forward`` the request reaches the downstream first, so the
  change is made there but the client never hears of it;
- ``down()`` / ``up()``: stop listening (connections are refused), then listen again on the same port.

Every request is logged (``hits``) with when it arrived and what it was answered, so tests can check
that nothing was sent while the target had asked to wait (Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Not forwarded either way: they describe one connection, or a body that the proxy re-frames.
_HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "upgrade",
        "proxy-connection",
        "te",
        "trailer",
    }
)


@dataclass
class Hit:
    """One request as the proxy saw it, logged as it arrives."""

    arrived: float  # time.monotonic() when the request arrived
    method: str
    path: str
    fault: str  # "pass", "status", "slow"
    answered: float | None = None  # time.monotonic() when the answer was sent; None: not yet
    status: int | None = None  # what the proxy answered (a client that timed out never reads it)


@dataclass
class _Fault:
    kind: str = "pass"
    status: int = 503
    retry_after: str | None = None
    detail: str = ""
    seconds: float = 0.0
    forward: bool = True
    count: int | None = None  # requests left to fault; None: every request until switched
    methods: frozenset[str] | None = None  # only requests with these methods; None: all


def _methods(methods: set[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(method.upper() for method in methods)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FaultyProxy:
    """``with FaultyProxy("http://127.0.0.1:PORT") as proxy:`` then point a target at ``proxy.url(path)``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = _free_port()
        self._lock = threading.Lock()
        self._fault = _Fault()
        self._switches = 0  # bumped by every switch and by down(), which ends any sleep in progress
        self._hits: list[Hit] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> FaultyProxy:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        """Listen (again) on the proxy's port."""
        if self._server is not None:
            return
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            access_log=False,
            lifespan="on",
            interface="asgi3",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True, name=f"faulty-proxy-{self.port}")
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the faulty proxy did not start on port {self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def down(self) -> None:
        """Stop listening: from now on connections to the port are refused, until ``up()``."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        with self._lock:
            self._switches += 1
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():
            raise RuntimeError("the faulty proxy did not stop")
        self._server = self._thread = None
        with socket.socket() as probe:  # make sure the port really refuses now
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} still accepts connections")

    # -- behaviour ------------------------------------------------------------------------------

    def _switch(self, fault: _Fault) -> None:
        with self._lock:
            self._fault = fault
            self._switches += 1

    def passthrough(self) -> None:
        self._switch(_Fault())

    def fail(
        self,
        status: int,
        count: int | None = None,
        retry_after: float | str | None = None,
        detail: str | None = None,
        methods: set[str] | None = None,
    ) -> None:
        """Answer the next ``count`` requests (all when None) with ``status``; only ``methods`` if given."""
        header = (
            None if retry_after is None else (retry_after if isinstance(retry_after, str) else str(int(retry_after)))
        )
        self._switch(
            _Fault(
                "status",
                status=status,
                retry_after=header,
                count=count,
                detail=detail or f"injected fault: {status}",
                methods=_methods(methods),
            )
        )

    def slow(
        self, seconds: float, count: int | None = None, forward: bool = True, methods: set[str] | None = None
    ) -> None:
        """Hold the next ``count`` answers for ``seconds``; forward the request first when ``forward``."""
        self._switch(_Fault("slow", seconds=seconds, count=count, forward=forward, methods=_methods(methods)))

    # -- what happened --------------------------------------------------------------------------

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return [Hit(**vars(hit)) for hit in self._hits]  # copies: the proxy's thread updates its own

    def hits_since(self, moment: float) -> list[Hit]:
        return [hit for hit in self.hits if hit.arrived >= moment]

    def faulted(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.fault != "pass"]

    # -- the ASGI app ---------------------------------------------------------------------------

    def _take(self, method: str) -> tuple[_Fault, int]:
        """The fault this request gets (counting it down), and the switch generation it belongs to."""
        with self._lock:
            fault = self._fault
            if fault.methods is not None and method not in fault.methods:
                return _Fault(), self._switches
            left = fault.count
            if fault.kind != "pass" and left is not None:
                if left <= 0:  # the faults asked for are spent: pass through from now on
                    fault = self._fault = _Fault()
                else:
                    fault.count = left - 1
            return _Fault(**vars(fault)), self._switches

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        fault, generation = self._take(scope["method"])
        hit = Hit(time.monotonic(), scope["method"], scope["path"], fault.kind)
        with self._lock:
            self._hits.append(hit)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if fault.kind == "status":
            status = fault.status
            headers = [(b"content-type", b"application/scim+json")]
            if fault.retry_after is not None:
                headers.append((b"retry-after", fault.retry_after.encode()))
            payload = json.dumps(
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": str(status),
                    "detail": fault.detail,
                }
            ).encode()
            await self._answer(send, status, headers, payload)
        else:
            if fault.kind == "slow" and not fault.forward:
                await self._sleep(fault.seconds, generation)
            status, headers, payload = await self._forward(scope, body)
            if fault.kind == "slow" and fault.forward:
                await self._sleep(fault.seconds, generation)
            await self._answer(send, status, headers, payload)
        with self._lock:
            hit.answered, hit.status = time.monotonic(), status

    async def _sleep(self, seconds: float, generation: int) -> None:
        """Sleep, but wake early when the proxy is switched or stopped (so shutdown never waits on it)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with self._lock:
                if self._switches != generation:
                    return
            await asyncio.sleep(min(0.02, max(end - time.monotonic(), 0)))

    async def _forward(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        client: httpx.AsyncClient = scope["state"]["client"]
        url = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in _HOP_HEADERS]
        try:
            response = await client.request(scope["method"], url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            return 502, [(b"content-type", b"text/plain")], f"bad gateway: {exc!r}".encode()
        out = [(k.encode(), v.encode()) for k, v in response.headers.multi_items() if k.lower() not in _HOP_HEADERS]
        return response.status_code, out, response.content

    @staticmethod
    async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
        # uvicorn drops what is sent to a client that hung up (one that timed out), without error.
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["client"] = httpx.AsyncClient(base_url=self.upstream, timeout=30)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await scope["state"]["client"].aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
