"""A quirky SCIM 2.0 server on 127.0.0.1, behaving as real SaaS applications do (issue 19).

A Starlette app under uvicorn in a thread of the test process, holding Users and Groups in memory.
Each quirk is a switch on ``Quirks``; with every switch off it is a plain, lenient SCIM server. With
them on (``Quirks.all()``) it does what the issue observed of a server nobody here wrote:

- ``complex_replace_500``: a PATCH ``replace``/``add`` of a complex attribute as a whole (``name``,
  the enterprise ``manager``, with an object value) answers 500, every time; sub-attribute paths
  (``name.givenName``) work;
- ``member_filter_remove_501``: ``remove`` with a filter path (``members[value eq "x"]``) answers
  501; ``{"op": "remove", "path": "members", "value": [{"value": "x"}]}`` works;
- ``display_name_replace_501``: a PATCH of a Group's ``displayName`` answers 501 (PUT works);
- ``external_id_patch_501``: a PATCH naming ``externalId`` answers 501 (PUT works);
- ``filters_empty``: filters it cannot evaluate answer an empty list rather than 400: on Users only
  ``userName eq`` is evaluated, on Groups none;
- ``drops``: attributes it silently does not store, on create and on every write: ``title``, the
  enterprise extension, e-mails' ``type``.

``patch_no_content``: a PATCH answers 204 without the resource (RFC 7644 3.5.2 allows it), so
what it kept can only be seen by reading the account again.

``refused`` holds userNames whose every write (create, PUT, PATCH) answers 500, whatever its form:
a change the application cannot take, for the poison-parking and secrets tests.

It also echoes the request's Authorization header in its error bodies when ``echo_authorization`` is
set, as some targets do, for the secrets tests. Every request is logged (``requests``) with its body
and the status answered, so tests can name what was sent and in which order.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.conftest import Peer, free_port

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_EQ = re.compile(r'^\s*([\w.:$-]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_MEMBER_FILTER = re.compile(r'value eq "((?:[^"\\]|\\.)*)"')
#: Complex attributes this server cannot replace whole when ``complex_replace_500`` is on.
_COMPLEX = {"name", f"{ENTERPRISE}:manager".lower()}

Resource = dict[str, Any]


@dataclass
class Quirks:
    complex_replace_500: bool = False
    member_filter_remove_501: bool = False
    display_name_replace_501: bool = False
    external_id_patch_501: bool = False
    filters_empty: bool = False
    drops: bool = False
    echo_authorization: bool = False
    refused: frozenset[str] = frozenset()
    patch_no_content: bool = False

    @classmethod
    def all(cls) -> Quirks:
        return cls(True, True, True, True, True, True)


@dataclass
class Logged:
    method: str
    path: str
    body: Any
    status: int
    at: float = field(default_factory=time.monotonic)


class Failure(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class QuirkyStore:
    """The server's state: resources by type and id, shared with the test that owns the server."""

    def __init__(self, quirks: Quirks) -> None:
        self.quirks = quirks
        self.resources: dict[str, dict[str, Resource]] = {"Users": {}, "Groups": {}}
        self.lock = threading.Lock()

    # -- what it stores --------------------------------------------------------------------------

    def _stored(self, kind: str, body: Resource, resource_id: str) -> Resource:
        doc = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("id", "meta")}
        if self.quirks.drops and kind == "Users":
            doc.pop("title", None)
            doc.pop(ENTERPRISE, None)
            doc["schemas"] = [s for s in doc.get("schemas", [USER_SCHEMA]) if s != ENTERPRISE]
            for email in doc.get("emails") or []:
                if isinstance(email, dict):
                    email.pop("type", None)
        if kind == "Groups":
            doc["members"] = [{"value": m["value"]} for m in doc.get("members") or [] if isinstance(m, dict)]
        doc["id"] = resource_id
        doc["meta"] = {"resourceType": kind[:-1], "location": f"/{kind}/{resource_id}"}
        return doc

    def seed(self, kind: str, body: Resource) -> str:
        """Put an account there directly, as the application's own admin would (one to adopt)."""
        resource_id = uuid.uuid4().hex
        with self.lock:
            self.resources[kind][resource_id] = self._stored(kind, body, resource_id)
        return resource_id

    def all(self, kind: str) -> list[Resource]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.resources[kind].values()]

    # -- requests --------------------------------------------------------------------------------

    def search(self, kind: str, filter_text: str | None) -> list[Resource]:
        items = self.all(kind)
        if not filter_text:
            return items
        match = _EQ.match(filter_text)
        attribute = match.group(1).lower() if match else ""
        if self.quirks.filters_empty and (kind == "Groups" or attribute != "username"):
            return []  # a filter it cannot evaluate: an empty list, not the 400 RFC 7644 3.4.2.2 asks for
        if match is None:
            raise Failure(400, f"unsupported filter {filter_text!r}")
        value = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
        case_exact = attribute not in ("username",)
        return [r for r in items if _matches(r.get(_key(r, attribute)), value, case_exact)]

    def _refuse(self, kind: str, doc: Resource) -> None:
        if kind == "Users" and str(doc.get("userName", "")).lower() in self.quirks.refused:
            raise Failure(500, f"cannot store {doc.get('userName')}: ORA-00600 internal error")

    def create(self, kind: str, body: Resource) -> Resource:
        self._refuse(kind, body)
        with self.lock:
            if kind == "Users":
                name = str(body.get("userName", "")).lower()
                if any(str(r.get("userName", "")).lower() == name for r in self.resources[kind].values()):
                    raise Failure(409, f"userName {body.get('userName')!r} is taken")
            resource_id = uuid.uuid4().hex
            self.resources[kind][resource_id] = self._stored(kind, body, resource_id)
            return copy.deepcopy(self.resources[kind][resource_id])

    def get(self, kind: str, resource_id: str) -> Resource:
        with self.lock:
            if resource_id not in self.resources[kind]:
                raise Failure(404, f"no {kind[:-1]} {resource_id}")
            return copy.deepcopy(self.resources[kind][resource_id])

    def replace(self, kind: str, resource_id: str, body: Resource) -> Resource:
        with self.lock:
            if resource_id not in self.resources[kind]:
                raise Failure(404, f"no {kind[:-1]} {resource_id}")
            self._refuse(kind, self.resources[kind][resource_id])
            self.resources[kind][resource_id] = self._stored(kind, body, resource_id)
            return copy.deepcopy(self.resources[kind][resource_id])

    def delete(self, kind: str, resource_id: str) -> None:
        with self.lock:
            if self.resources[kind].pop(resource_id, None) is None:
                raise Failure(404, f"no {kind[:-1]} {resource_id}")

    def patch(self, kind: str, resource_id: str, operations: list[dict[str, Any]]) -> Resource:
        with self.lock:
            if resource_id not in self.resources[kind]:
                raise Failure(404, f"no {kind[:-1]} {resource_id}")
            doc = copy.deepcopy(self.resources[kind][resource_id])
        self._refuse(kind, doc)
        for operation in operations:
            self._check(kind, operation)
        for operation in operations:
            _apply(doc, operation)
        with self.lock:
            self.resources[kind][resource_id] = self._stored(kind, doc, resource_id)
            return copy.deepcopy(self.resources[kind][resource_id])

    def _check(self, kind: str, operation: dict[str, Any]) -> None:
        """The quirks that refuse a PATCH operation, all checked before any is applied (atomic)."""
        op = str(operation.get("op", "")).lower()
        path = str(operation.get("path") or "")
        value = operation.get("value")
        names = {path.lower()} if path else {k.lower() for k in value} if isinstance(value, dict) else set()
        if self.quirks.external_id_patch_501 and "externalid" in names:
            raise Failure(501, "externalId cannot be changed by PATCH")
        if self.quirks.display_name_replace_501 and kind == "Groups" and "displayname" in names:
            raise Failure(501, "renaming a group by PATCH is not implemented")
        if self.quirks.member_filter_remove_501 and op == "remove" and "[" in path:
            raise Failure(501, "filtered paths are not implemented")
        if self.quirks.complex_replace_500 and op in ("replace", "add"):
            whole = (path.lower() in _COMPLEX and isinstance(value, dict)) or (
                not path
                and isinstance(value, dict)
                and any(k.lower() in _COMPLEX and isinstance(v, dict) for k, v in value.items())
            )
            if whole:
                raise Failure(500, "java.lang.NullPointerException at ComplexAttributeMapper")


def _key(resource: Resource, attribute: str) -> str:
    return next((k for k in resource if k.lower() == attribute), attribute)


def _matches(actual: Any, value: str, case_exact: bool) -> bool:
    if not isinstance(actual, str):
        return False
    return actual == value if case_exact else actual.lower() == value.lower()


def _container(doc: Resource, path: str) -> tuple[Resource, str, str | None]:
    """(the object holding the attribute, its name, a sub-attribute or None) for a PATCH path."""
    if path.lower().startswith("urn:"):
        urn, _, rest = path.rpartition(":")
        if rest and urn.lower() == ENTERPRISE.lower():
            attr, _, sub = rest.partition(".")
            holder = doc.setdefault(ENTERPRISE, {})
            if ENTERPRISE not in doc.setdefault("schemas", []):
                doc["schemas"].append(ENTERPRISE)
            return holder, attr, sub or None
        return doc, path, None
    attr, _, sub = path.partition(".")
    return doc, _key(doc, attr.lower()), sub or None


def _apply(doc: Resource, operation: dict[str, Any]) -> None:
    op = str(operation.get("op", "")).lower()
    path = str(operation.get("path") or "")
    value = copy.deepcopy(operation.get("value"))
    if not path:
        if not isinstance(value, dict):
            raise Failure(400, "a PATCH without path needs an object value")
        for key, item in value.items():
            _apply(doc, {"op": op, "path": key, "value": item})
        return
    if path.startswith("members["):
        removed = set(_MEMBER_FILTER.findall(path))
        doc["members"] = [m for m in doc.get("members") or [] if m.get("value") not in removed]
        return
    holder, attr, sub = _container(doc, path)
    if op == "remove":
        if attr == "members" and isinstance(value, list):
            removed = {m.get("value") for m in value if isinstance(m, dict)}
            doc["members"] = [m for m in doc.get("members") or [] if m.get("value") not in removed]
        elif sub is None:
            holder.pop(attr, None)
        elif isinstance(holder.get(attr), dict):
            holder[attr].pop(sub, None)
        return
    if op == "add" and attr == "members":
        have = {m.get("value") for m in doc.get("members") or []}
        doc["members"] = [
            *(doc.get("members") or []),
            *(m for m in value or [] if isinstance(m, dict) and m.get("value") not in have),
        ]
        return
    if op not in ("add", "replace"):
        raise Failure(400, f"unknown op {op!r}")
    if sub is None:
        holder[attr] = value
    else:
        holder.setdefault(attr, {})[sub] = value


class QuirkyServer:
    """The server in a uvicorn thread; ``with QuirkyServer(Quirks.all()) as server: server.peer``."""

    def __init__(self, quirks: Quirks | None = None, token: str | None = None) -> None:
        self.store = QuirkyStore(quirks or Quirks())
        self.token = token or uuid.uuid4().hex
        self.requests: list[Logged] = []
        self.port = free_port()
        app = Starlette(
            routes=[
                Route("/ServiceProviderConfig", self._config, methods=["GET"]),
                Route("/ResourceTypes", self._resource_types, methods=["GET"]),
                Route("/Schemas", self._schemas, methods=["GET"]),
                Route("/{kind:str}", self._collection, methods=["GET", "POST"]),
                Route("/{kind:str}/{id:str}", self._one, methods=["GET", "PUT", "PATCH", "DELETE"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def quirks(self) -> Quirks:
        return self.store.quirks

    @property
    def peer(self) -> Peer:
        return Peer(f"http://127.0.0.1:{self.port}", self.token)

    def __enter__(self) -> QuirkyServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the quirky server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def sent(self, method: str, kind: str | None = None) -> list[Logged]:
        return [r for r in self.requests if r.method == method and (kind is None or r.path.startswith(f"/{kind}"))]

    # -- HTTP ------------------------------------------------------------------------------------

    def _answer(self, request: Request, body: Any, status: int, payload: Any) -> Response:
        self.requests.append(Logged(request.method, request.url.path, body, status))
        if payload is None:
            return Response(status_code=status)
        return JSONResponse(payload, status_code=status, media_type="application/scim+json")

    def _error(self, request: Request, body: Any, status: int, detail: str) -> Response:
        if self.quirks.echo_authorization:
            detail = f"{detail} (request had Authorization: {request.headers.get('authorization')})"
        return self._answer(request, body, status, {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail})

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def _config(self, request: Request) -> Response:
        # It claims full PATCH and filter support, as such servers do: the profile is learned by probing.
        return self._answer(
            request,
            None,
            200,
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 200},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [
                    {"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "bearer"}
                ],
            },
        )

    async def _resource_types(self, request: Request) -> Response:
        types = [
            {
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "schema": USER_SCHEMA,
                "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            },
            {"id": "Group", "name": "Group", "endpoint": "/Groups", "schema": GROUP_SCHEMA},
        ]
        return self._answer(request, None, 200, {"schemas": [LIST_SCHEMA], "totalResults": 2, "Resources": types})

    async def _schemas(self, request: Request) -> Response:
        schemas = [{"id": USER_SCHEMA, "name": "User"}, {"id": GROUP_SCHEMA, "name": "Group"}]
        if not self.quirks.drops:
            schemas.append({"id": ENTERPRISE, "name": "EnterpriseUser"})
        return self._answer(
            request, None, 200, {"schemas": [LIST_SCHEMA], "totalResults": len(schemas), "Resources": schemas}
        )

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        return json.loads(raw) if raw.strip() else None

    async def _collection(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        body: Any = await self._body(request) if request.method == "POST" else None
        if not self._authorized(request):
            return self._error(request, body, 401, "invalid token")
        if kind not in ("Users", "Groups"):
            return self._error(request, body, 404, f"no endpoint {kind}")
        try:
            if request.method == "POST":
                return self._answer(request, body, 201, self.store.create(kind, body))
            found = self.store.search(kind, request.query_params.get("filter"))
        except Failure as failure:
            return self._error(request, body, failure.status, failure.detail)
        start = max(int(request.query_params.get("startIndex", "1")), 1)
        count = int(request.query_params.get("count", "100"))
        page = found[start - 1 : start - 1 + count]
        attributes = request.query_params.get("attributes")
        if attributes:
            keep = {a.strip().lower() for a in attributes.split(",")} | {"id"}
            page = [{k: v for k, v in r.items() if k.lower() in keep} for r in page]
        return self._answer(
            request,
            None,
            200,
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": len(found),
                "startIndex": start,
                "itemsPerPage": len(page),
                "Resources": page,
            },
        )

    async def _one(self, request: Request) -> Response:
        kind, resource_id = request.path_params["kind"], request.path_params["id"]
        body: Any = await self._body(request) if request.method in ("PUT", "PATCH") else None
        if not self._authorized(request):
            return self._error(request, body, 401, "invalid token")
        if kind not in ("Users", "Groups"):
            return self._error(request, body, 404, f"no endpoint {kind}")
        try:
            if request.method == "GET":
                return self._answer(request, None, 200, self.store.get(kind, resource_id))
            if request.method == "PUT":
                return self._answer(request, body, 200, self.store.replace(kind, resource_id, body))
            if request.method == "DELETE":
                self.store.delete(kind, resource_id)
                return self._answer(request, None, 204, None)
            patched = self.store.patch(kind, resource_id, body["Operations"])
            if self.quirks.patch_no_content:
                return self._answer(request, body, 204, None)
            return self._answer(request, body, 200, patched)
        except Failure as failure:
            return self._error(request, body, failure.status, failure.detail)
