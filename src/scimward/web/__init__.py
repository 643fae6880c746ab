"""The web console (DESIGN.md: an edge beside ``api`` and ``cli``): server-rendered pages at ``/console``.

``create_console`` builds the ASGI application ``scimward serve`` mounts at ``PREFIX``. Pages are
listed once, in ``web.nav.PAGES``: adding a page is one entry there and a module in ``web.pages``.
"""

from __future__ import annotations

from scimward.web.app import PREFIX, create_console

__all__ = ["PREFIX", "create_console"]
