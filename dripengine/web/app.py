"""The ASGI app of `drip serve` (Starlette): provider webhooks, tracking, unsubscribe, the API.

Importable so it can be mounted in another ASGI server::

    from dripengine.web import create_app
    app = create_app()            # drip.toml / DRIP_* from the current folder

Each area registers its own routes (``web/<area>.py`` exposes ``routes(ctx)``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.web.context import WebContext


def _health_routes(ctx: WebContext) -> list[BaseRoute]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return [Route("/healthz", healthz, methods=["GET"])]


def build_app(ctx: WebContext) -> Starlette:
    """The app over an explicit context (tests, `drip serve`)."""
    routes: list[BaseRoute] = []
    for area in _areas():
        routes += area(ctx)
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app


def _areas() -> list[Callable[[WebContext], list[BaseRoute]]]:
    # each area module is optional while it is being built; every one shipped is listed here
    from dripengine.web import modules

    return [_health_routes, *modules.AREAS]


def create_app(config: str | None = None) -> Starlette:
    """The app from drip.toml and the environment, as `drip serve` builds it."""
    from dripengine.clock import SystemClock
    from dripengine.config import load_settings
    from dripengine.db import make_engine
    from dripengine.sla import load_sla

    settings = load_settings(config)
    ctx = WebContext(
        settings=settings,
        engine=make_engine(settings.database_url),
        sla=load_sla(settings.path("sla")),
        clock=SystemClock(),
    )
    return build_app(ctx)
