"""The ASGI app of `drip serve` (Starlette): provider webhooks, tracking, unsubscribe, the API.

Importable so it can be mounted in another ASGI server::

    from dripengine.web import create_app
    app = create_app()            # drip.toml / DRIP_* from the current folder

Each area registers its own routes (``web/<area>.py`` exposes ``routes(ctx)``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from dripengine.web.context import WebContext


def build_app(ctx: WebContext, *, heartbeat: bool = False) -> Starlette:
    """The app over an explicit context (tests, `drip serve`). ``heartbeat``: the process is in
    the ``worker`` table while the app runs (kind ``serve``: `drip status`, ``/metrics``)."""
    from dripengine.web import events_webhook
    from dripengine.web.guard import BodyGuard, Limits
    from dripengine.web.presence import heartbeat_lifespan

    routes: list[BaseRoute] = []
    for area in _areas():
        routes += area(ctx)
    web = ctx.settings.web
    limits = Limits(
        max_body_bytes=web.max_body_bytes,
        buffer_bytes=web.body_buffer_bytes,
        idle_seconds=web.body_idle_seconds,
        total_seconds=web.body_total_seconds,
    )
    checks = events_webhook.header_checks(ctx)
    guard = Middleware(BodyGuard, limits=limits, header_checks=checks)
    lifespan = heartbeat_lifespan(ctx.engine, ctx.clock) if heartbeat else None
    app = Starlette(routes=routes, middleware=[guard], lifespan=lifespan)
    app.state.ctx = ctx
    return app


def _areas() -> list[Callable[[WebContext], list[BaseRoute]]]:
    # each area module is optional while it is being built; every one shipped is listed here
    from dripengine.web import modules

    return list(modules.AREAS)


def create_app(config: str | None = None) -> Starlette:
    """The app from drip.toml and the environment, as `drip serve` builds it."""
    from dripengine.clock import SystemClock
    from dripengine.config import load_settings
    from dripengine.funnel.sla import load_sla
    from dripengine.storage.engine import open_engine

    settings = load_settings(config)
    ctx = WebContext(
        settings=settings,
        engine=open_engine(settings),
        sla=load_sla(settings.path("sla")),
        clock=SystemClock(),
    )
    return build_app(ctx, heartbeat=True)
