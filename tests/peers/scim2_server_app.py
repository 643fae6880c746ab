"""scim2-server (a SCIM service nobody here wrote) as an ASGI app, guarded by one bearer token.

Served by uvicorn in a subprocess of the tests: ``uvicorn --app-dir tests/peers scim2_server_app:app``.
The token comes from ``$SCIM2_TOKEN``. Storage is in memory, so one worker, and it is gone on exit.
Adapted from /work/shared/bench/peers/scim2_server_asgi.py.
"""

from __future__ import annotations

import os
from typing import Any

from scim2_models import ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

TOKEN = os.environ["SCIM2_TOKEN"]


class BearerASGIApplication(ASGIApplication):
    def check_auth(self, request: Any) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != TOKEN:
            raise UnauthorizedException


config = load_default_service_provider_config()
config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
provider = ScimProvider.from_discovery(
    load_default_schemas().values(), load_default_resource_types().values(), config=config
)
# The default configuration announces no cursor pagination, so the secret only satisfies the constructor.
service = ScimService(provider, secret=os.urandom(24).hex())
app = BearerASGIApplication(AsyncInMemoryStorage(), provider, service=service)
