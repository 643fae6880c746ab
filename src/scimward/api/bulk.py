"""POST ``/Bulk`` (RFC 7644 3.7): many resource operations in one request.

Each operation runs on its own, in its own transaction, through the same store calls as the
single-resource endpoints. Bulk is not atomic (RFC 7644 3.7): an operation that fails writes nothing,
and the operations before it stay written.

Order: operations run in request order, except that a POST runs before the first operation that
references its ``bulkId`` (RFC 7644 3.7.2 lets a group come before the users it lists). Results are
reported in request order, whatever order they ran in.

Decisions (RFC 7644 leaves them to the service provider):

- A ``bulkId:<id>`` reference that cannot be resolved fails the operation holding it with 409 Conflict
  and no ``scimType``: no POST of the request declares that bulkId, that POST failed, or the
  references form a cycle. RFC 7644 3.7.1 allows a 409 for circular references instead of splitting
  operations; 3.12 Table 9 has no keyword for it (``invalidValue`` is a 400, ``uniqueness`` means
  a duplicate), so the detail names the cause.
- A reference is ``bulkId:`` at the start of a string, after a ``/`` (a path or URL segment) or after
  a double quote (a PATCH filter such as ``members[value eq "bulkId:x"]``); the bulkId runs to the
  next ``/``, quote or backslash. Text such as "see bulkId:x" in a description is not a reference.
- Two operations with the same bulkId make the whole request a 400 ``invalidValue``: the client's
  references would be ambiguous, so no operation runs.
- A malformed operation (unknown method, bad path, missing data) fails alone with a 400
  ``invalidSyntax``, as a malformed single request would.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.api.context import (
    actor_of,
    hub,
    json_body,
    known_failure,
    request_id,
    scim_endpoint,
    source_of,
)
from scimward.api.errors import InternalError, as_scim_error
from scimward.api.resources import ResourceEndpoints, base_url
from scimward.api.responses import ScimResponse
from scimward.errors import ScimwardError
from scimward.scim.errors import (
    InvalidSyntax,
    InvalidValue,
    PayloadTooLarge,
    ScimError,
)
from scimward.scim.patch import check_operation_limit
from scimward.scim.resource import normalize

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Matched on the JSON text of an operation's path and data, so nesting depth costs no recursion.
_REFERENCE = re.compile(r'(?:^|(?<=[/"]))bulkId:([^/"\\]+)')

log = structlog.get_logger("scimward.api")


class UnresolvedReference(ScimError):
    """A ``bulkId`` reference with no resource behind it (RFC 7644 3.7.1, 3.7.2)."""

    status = 409


def _fields(operation: Any) -> dict[str, Any] | None:
    """An operation's attributes by lower-cased name: SCIM attribute names are case-insensitive."""
    if not isinstance(operation, dict):
        return None
    return {str(key).lower(): value for key, value in operation.items()}


def parse_bulk_request(body: Any, max_operations: int) -> tuple[list[Any], int | None]:
    """The operations and failOnErrors of a BulkRequest, after the checks that refuse it whole."""
    fields = _fields(body)
    if fields is None:
        raise InvalidSyntax("a BulkRequest must be a JSON object")
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST.lower() not in {str(s).lower() for s in schemas}:
        raise InvalidSyntax(f"a BulkRequest must list {BULK_REQUEST!r} in schemas")
    operations = fields.get("operations")
    if not isinstance(operations, list):
        raise InvalidSyntax("a BulkRequest needs Operations, a list of operations")
    if len(operations) > max_operations:
        raise PayloadTooLarge(
            f"The number of operations ({len(operations)}) exceeds the maxOperations ({max_operations})"
        )
    fail_on_errors = fields.get("failonerrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool) or not isinstance(fail_on_errors, int) or fail_on_errors < 1
    ):
        raise InvalidValue("failOnErrors must be a positive integer")
    seen: set[str] = set()
    for operation in operations:
        bulk_id = (_fields(operation) or {}).get("bulkid")
        if isinstance(bulk_id, str):
            if bulk_id in seen:
                raise InvalidValue(
                    f"bulkId {bulk_id!r} is given to more than one operation; "
                    "a bulkId must be unique within a request (RFC 7644 3.7)"
                )
            seen.add(bulk_id)
    return operations, fail_on_errors


class BulkJob:
    """One bulk request being run: its plan, the resources its POSTs created, the results so far."""

    def __init__(self, request: Request, targets: dict[str, ResourceEndpoints], operations: list[Any]) -> None:
        self.request = request
        self.targets = targets
        self.operations = [_fields(operation) for operation in operations]
        self.base = base_url(request)
        self.source = source_of(request)
        self.actor = actor_of(request)
        #: bulkId -> position of the POST declaring it; only a POST creates what a bulkId stands for.
        self.creators = {
            op["bulkid"]: i
            for i, op in enumerate(self.operations)
            if op and isinstance(op.get("bulkid"), str) and str(op.get("method")).upper() == "POST"
        }
        self.created: dict[str, str] = {}
        self.results: dict[int, dict[str, Any]] = {}
        self.errors = 0

    def order(self) -> list[int]:
        """Request order, each POST moved before the first operation referencing it.

        A depth-first walk of the references, with an explicit stack so a long chain of references
        cannot exhaust Python's. A cycle leaves a referencing operation before the POST it waits on;
        resolving that reference then fails with 409.
        """
        depends = [[self.creators[b] for b in self._references(op) if b in self.creators] for op in self.operations]
        order: list[int] = []
        state = [0] * len(self.operations)  # 0 unseen, 1 on the current path, 2 placed
        for root in range(len(self.operations)):
            if state[root]:
                continue
            state[root] = 1
            stack = [(root, iter(depends[root]))]
            while stack:
                node, pending = stack[-1]
                dependency = next(pending, None)
                if dependency is None:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                elif state[dependency] == 0:
                    state[dependency] = 1
                    stack.append((dependency, iter(depends[dependency])))
        return order

    @staticmethod
    def _references(op: dict[str, Any] | None) -> list[str]:
        if op is None:
            return []
        return _REFERENCE.findall(orjson.dumps([op.get("path"), op.get("data")]).decode())

    def _resolve(self, value: Any) -> Any:
        """``value`` with every ``bulkId:<id>`` replaced by the id of the resource that POST created."""

        def replace(match: re.Match[str]) -> str:
            bulk_id = match.group(1)
            if bulk_id in self.created:
                return self.created[bulk_id]
            creator = self.creators.get(bulk_id)
            if creator is None:
                raise UnresolvedReference(f"no POST operation in this request has bulkId {bulk_id!r}")
            if creator not in self.results:
                raise UnresolvedReference(
                    f"circular bulkId reference: the POST with bulkId {bulk_id!r} waits on this operation "
                    "(RFC 7644 3.7.1)"
                )
            raise UnresolvedReference(
                f"the POST with bulkId {bulk_id!r} failed (status "
                f"{self.results[creator]['status']}), so there is no resource to reference"
            )

        return orjson.loads(_REFERENCE.sub(replace, orjson.dumps(value).decode()))

    def _target(self, method: str, path: str) -> tuple[ResourceEndpoints, str]:
        """The resource type and id an operation path names: ``/Users`` for POST, else ``/Users/{id}``."""
        endpoint, _, identity_id = path.strip().lstrip("/").partition("/")
        resource = self.targets.get("/" + endpoint)
        if resource is None:
            raise InvalidSyntax(f"path {path!r} names no resource type; expected one of {', '.join(self.targets)}")
        identity_id = identity_id.rstrip("/")
        if method == "POST" and identity_id:
            raise InvalidSyntax(f"a POST path is a resource type endpoint such as {resource.rt.endpoint}")
        if method != "POST" and (not identity_id or "/" in identity_id):
            raise InvalidSyntax(f"a {method} path names one resource, such as {resource.rt.endpoint}/{{id}}")
        return resource, identity_id

    async def run(self, index: int) -> None:
        """Run one operation and record its result; any failure is that operation's alone."""
        result: dict[str, Any] = {}
        try:
            result["status"] = await self._apply(self.operations[index], result)
        except ScimwardError as error:
            answer = as_scim_error(error)
            result["status"] = str(answer.status)
            result["response"] = answer.to_error()
        except Exception as exc:  # the edge, per operation
            # Earlier operations are committed, so a 500 for the whole request would hide what was
            # written; the failure stays with this operation and the request goes on.
            known = known_failure(exc)
            if known is not None:
                result["status"] = str(known.status)
                result["response"] = known.to_error()
                self.errors += 1
                self.results[index] = result
                return
            rid = request_id(self.request)
            log.exception("unhandled error in bulk operation", request_id=rid, operation=index)
            internal = InternalError(f"internal error; request id {rid}")
            result["status"] = str(internal.status)
            result["response"] = internal.to_error()
        if int(result["status"]) >= 400:
            self.errors += 1
        self.results[index] = result

    async def _apply(self, op: dict[str, Any] | None, result: dict[str, Any]) -> str:
        """Apply one operation; fill ``result`` (method, bulkId, location, version); return its status."""
        if op is None:
            raise InvalidSyntax("an operation must be a JSON object")
        method, bulk_id, version = op.get("method"), op.get("bulkid"), op.get("version")
        if isinstance(method, str):
            result["method"] = method = method.upper()
        if bulk_id is not None:
            result["bulkId"] = bulk_id
        if method not in METHODS:
            raise InvalidSyntax(f"method must be one of {', '.join(METHODS)}, not {op.get('method')!r}")
        if bulk_id is not None and not isinstance(bulk_id, str):
            raise InvalidSyntax("bulkId must be a string")
        if method == "POST" and not bulk_id:
            raise InvalidSyntax("a POST operation needs a bulkId (RFC 7644 3.7)")
        if version is not None and not isinstance(version, str):
            raise InvalidSyntax("version must be the resource's ETag, a string")
        if not isinstance(op.get("path"), str):
            raise InvalidSyntax("path is required: a resource type endpoint such as /Users, or /Users/{id}")
        if method != "DELETE" and not isinstance(op.get("data"), dict):
            raise InvalidSyntax(f"a {method} operation needs data, a JSON object")
        path, data = self._resolve([op["path"], op.get("data")])
        resource, identity_id = self._target(method, path)
        rt, store = resource.rt, hub(self.request).identities
        if method == "POST":
            stored = await store.create(rt, normalize(data, rt), source=self.source, actor=self.actor)
            self.created[str(bulk_id)] = stored.id
            result["location"] = f"{self.base}{rt.endpoint}/{stored.id}"
            result["version"] = stored.etag
            return "201"
        # RFC 7644 3.7: location is required in a response except for a failed POST.
        result["location"] = f"{self.base}{rt.endpoint}/{identity_id}"
        if method == "DELETE":
            await store.delete(rt, identity_id, if_match=version, source=self.source, actor=self.actor)
            return "204"
        if method == "PUT":
            stored = await store.replace(
                rt, identity_id, normalize(data, rt), if_match=version, source=self.source, actor=self.actor
            )
        else:
            check_operation_limit(data, hub(self.request).settings.patch_max_operations)
            stored = await store.patch(rt, identity_id, data, if_match=version, source=self.source, actor=self.actor)
        result["version"] = stored.etag
        return "200"


def routes(endpoints: list[ResourceEndpoints]) -> list[Route]:
    targets = {resource.rt.endpoint: resource for resource in endpoints}

    @scim_endpoint
    async def bulk(request: Request) -> Response:
        settings = hub(request).settings
        body = await json_body(request, settings.bulk_max_payload_bytes, "the maxPayloadSize")
        operations, fail_on_errors = parse_bulk_request(body, settings.bulk_max_operations)
        job = BulkJob(request, targets, operations)
        for index in job.order():
            await job.run(index)
            if fail_on_errors is not None and job.errors >= fail_on_errors:
                break  # RFC 7644 3.7.3: operations not run are left out of the response
        results = [job.results[index] for index in sorted(job.results)]
        return ScimResponse({"schemas": [BULK_RESPONSE], "Operations": results})

    return [Route("/Bulk", bulk, methods=["POST"])]
