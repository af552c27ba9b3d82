"""The route areas of `drip serve`; each ``web/<area>.py`` has ``routes(ctx) -> list[BaseRoute]``."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from dripengine.web import (
    api,
    events_webhook,
    feedback_api,
    health,
    inbound,
    metrics,
    report,
    touches_api,
    tracking,
    unsubscribe,
)
from dripengine.web.context import WebContext

AREAS: list[Callable[[WebContext], list[BaseRoute]]] = []
AREAS.append(health.routes)
AREAS.append(metrics.routes)
AREAS.append(events_webhook.routes)
AREAS.append(inbound.routes)
AREAS.append(tracking.routes)
AREAS.append(unsubscribe.routes)
AREAS.append(api.routes)
AREAS.append(feedback_api.routes)
AREAS.append(touches_api.routes)
AREAS.append(report.routes)
