"""Structured logs (structlog) to stderr, shared by every command and by every process ``serve`` starts.

The scim layer logs with the standard library (it may not depend on structlog), and so do uvicorn,
SQLAlchemy and httpx; those records are rendered by the same processors, so with ``json`` every
line is one JSON object and carries the request's context (the SCIM client's token name, bound by
the API edge). ``uvicorn_config`` hands uvicorn the same set-up as a ``dictConfig``: uvicorn applies
it in each worker process it starts (``serve --workers N``), where this module's
``configure_logging`` never ran.

The level applies to scimward's own loggers; the libraries' stay at ``info`` or above, so
``--log-level debug`` shows the IdP dialect rewrites rather than hundreds of driver lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
OWN = "scimward"


def _numeric(level: str) -> int:
    return logging.getLevelNamesMapping().get(level.upper(), logging.INFO)


def library_level(level: str) -> int:
    """The level of every logger but scimward's: as asked, but never below ``info``."""
    return max(_numeric(level), logging.INFO)


def formatter(level: str = "info", fmt: str = "json") -> logging.Formatter:
    """The formatter of every handler; it also configures structlog for this process.

    Both at once because ``dictConfig`` (uvicorn's way into its worker processes) can call a
    formatter factory and nothing else.
    """
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(_numeric(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Configure this process's logging as ``uvicorn_config`` configures each ``serve`` process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(level, fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(library_level(level))
    logging.getLogger(OWN).setLevel(_numeric(level))
    # Migrations run at every start; their chatter is noise unless debugging.
    logging.getLogger("alembic").setLevel(max(_numeric(level), logging.WARNING))


def uvicorn_config(level: str, fmt: str) -> dict[str, Any]:
    """``uvicorn.run(log_config=...)``: uvicorn's loggers, and everyone's, through ``formatter``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"scimward": {"()": f"{__name__}.formatter", "level": level, "fmt": fmt}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "scimward", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": library_level(level)},
        "loggers": {
            OWN: {"level": _numeric(level)},
            "alembic": {"level": max(_numeric(level), logging.WARNING)},
            # uvicorn's own set-up gives these handlers of their own; here they only propagate.
            **{
                name: {"handlers": [], "propagate": True, "level": library_level(level)}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
        },
    }
