"""Groups: the same search as identities, over Groups, with member counts and the privileged flag."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.scim.resource_types import GROUP_TYPE
from scimward.web.auth import requires
from scimward.web.pages.identities import listing


@requires("viewer")
async def groups(request: Request) -> Response:
    return await listing(request, GROUP_TYPE, "groups.html", "Groups")


routes = [Route("/groups", groups, methods=["GET"], name="groups")]
