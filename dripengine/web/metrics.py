"""``GET /metrics``: the figures of :mod:`dripengine.reports.metrics` for Prometheus.

The exposition format (text 0.0.4 / 1.0.0, or OpenMetrics when the scraper asks for it in
``Accept``) is written by ``prometheus_client``; this module only names the figures. Every
figure is read from the database at each scrape, so all `drip serve` processes answer alike.

Who may read it is ``web.metrics``: ``token`` (the default) wants ``Authorization: Bearer
<web.api_token>`` as ``/api/*`` does (401 without it, 503 when no token is configured), ``open``
answers anyone (a scraper on a private network), ``off`` serves no ``/metrics`` at all (404).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from dripengine.reports.metrics import Metrics, read_metrics
from dripengine.storage import DBAPIError
from dripengine.storage.engine import database_error_reason
from dripengine.web.auth import Unauthorised, require_token
from dripengine.web.context import WebContext

log = logging.getLogger("dripengine.web")
HEADERS = {"Cache-Control": "no-store"}
NO_TOKEN = (
    "/metrics wants the API token and none is set: set DRIP_API_TOKEN (web.api_token), or "
    "web.metrics = open (DRIP_WEB_METRICS=open) to serve it to anyone who reaches it"
)


class _Snapshot(Collector):
    """One scrape's figures as metric families (a registry per scrape: nothing kept between)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield CounterMetricFamily(
            "drip_messages_sent",
            "Emails a provider accepted (a later drop by the provider counts in failed too).",
            m.messages_sent,
        )
        yield CounterMetricFamily(
            "drip_messages_failed", "Emails that failed for good, all processes.", m.messages_failed
        )
        gauges = (
            ("drip_messages_in_flight", "Emails recorded as sending.", m.messages_in_flight),
            ("drip_messages_retrying", "Emails waiting for another attempt.", m.messages_retrying),
            (
                "drip_messages_unknown",
                "Emails a crash interrupted, their outcome unknown (never resent).",
                m.messages_unknown,
            ),
            (
                "drip_enrollments_due",
                "Active enrollments whose next step is due now (the queue).",
                m.enrollments_due,
            ),
            (
                "drip_enrollments_oldest_due_age_seconds",
                "Seconds the most overdue active enrollment has been due (0: none due).",
                m.oldest_due_age_seconds,
            ),
            (
                "drip_campaigns_paused",
                "Campaigns paused by the complaint breaker.",
                m.campaigns_paused,
            ),
            (
                "drip_handoffs_pending",
                "Requalified leads not yet accepted by the CRM.",
                m.handoffs_pending,
            ),
            (
                "drip_handoffs_failing",
                "Pending handoffs whose last attempt failed.",
                m.handoffs_failing,
            ),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        webhook = (
            (
                "drip_webhook_lag_seconds",
                "Seconds between the newest delivered event's time and its arrival.",
                m.webhook_lag_seconds,
            ),
            (
                "drip_webhook_last_received_age_seconds",
                "Seconds since the newest delivered event arrived.",
                m.webhook_last_received_age_seconds,
            ),
        )
        for name, documentation, maybe in webhook:
            family = GaugeMetricFamily(name, documentation)
            if maybe is not None:  # no delivered event yet: no sample, rather than a made-up 0
                family.add_metric([], maybe)
            yield family
        alive = GaugeMetricFamily(
            "drip_processes_alive",
            "drip run (kind run) and drip serve (kind serve) processes with a recent heartbeat.",
            labels=["kind"],
        )
        for kind, count in sorted(m.processes_alive.items()):
            alive.add_metric([kind], count)
        yield alive


def exposition(metrics: Metrics, accept: str) -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format ``accept`` asks for."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def routes(ctx: WebContext) -> list[BaseRoute]:
    if ctx.settings.web.metrics == "off":
        return []

    async def metrics(request: Request) -> Response:
        if ctx.settings.web.metrics == "token":
            try:
                require_token(request, ctx.settings)
            except Unauthorised as exc:
                detail = NO_TOKEN if exc.status == 503 else str(exc)
                return PlainTextResponse(detail + "\n", exc.status, headers=exc.headers)
        try:
            figures = await run_in_threadpool(read_metrics, ctx.engine, ctx.clock.now())
        except DBAPIError as exc:
            log.warning("/metrics: the database did not answer: %s", database_error_reason(exc))
            return PlainTextResponse("the database did not answer\n", 503, headers=HEADERS)
        body, content_type = exposition(figures, request.headers.get("accept", ""))
        return Response(body, headers={**HEADERS, "Content-Type": content_type})

    return [Route("/metrics", metrics, methods=["GET"])]


__all__ = ["exposition", "routes"]
