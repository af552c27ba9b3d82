"""``GET /metrics``: every figure read from the database at ``now`` (SQLite and PostgreSQL), the
exposition as Prometheus parses it, and who may read it over real HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from dripengine.reports.metrics import Metrics, read_metrics
from dripengine.storage.models import EVENT, HANDOFF, MESSAGE, PAUSE
from dripengine.storage.pauses import RESUMED
from dripengine.web.metrics import exposition
from tests.served import drip_serve, free_port, request
from tests.test_status import T, _message, populate

TOKEN = "metrics-token-0123456789"


def add_engagement(engine: Engine) -> None:
    """Besides test_status.populate: delivered events, breaker pauses and handoffs."""
    minute = timedelta(minutes=1)
    with engine.begin() as connection:
        dropped = _message(12, "dropped", "failed", T - 9 * minute, sent=T - 9 * minute)
        connection.execute(insert(MESSAGE), [dropped])  # accepted, then dropped by the provider
        connection.execute(
            insert(EVENT),
            [
                {  # the newest delivered event: 90 s on its way, received 2 minutes before T
                    "type": "delivered",
                    "provider": "sendgrid",
                    "provider_event_id": "e1",
                    "occurred_at": T - 2 * minute - timedelta(seconds=90),
                    "received_at": T - 2 * minute,
                    "raw": {},
                },
                {  # older
                    "type": "delivered",
                    "provider": "sendgrid",
                    "provider_event_id": "e2",
                    "occurred_at": T - 60 * minute,
                    "received_at": T - 59 * minute,
                    "raw": {},
                },
                {  # newer, but an open (our own pixel): not the webhook's
                    "type": "open",
                    "provider": "drip",
                    "provider_event_id": "e3",
                    "occurred_at": T - minute,
                    "received_at": T - minute,
                    "raw": {},
                },
            ],
        )
        connection.execute(
            insert(PAUSE),
            [
                {"campaign_id": "a", "reason": "complaint rate 0.2%", "paused_at": T - minute},
                {"campaign_id": "b", "reason": "bounce rate 3%", "paused_at": T - minute},
                {"campaign_id": "c", "reason": RESUMED, "paused_at": T - minute},  # not paused
            ],
        )
        handoff = {"lead_id": 1, "score": 40.0, "fit_grade": "A", "payload": {}, "created_at": T}
        connection.execute(  # every row names the same columns: one executemany
            insert(HANDOFF),
            [
                {**handoff, "uid": "h1", "status": "pending", "last_error": None},
                {**handoff, "uid": "h2", "status": "pending", "last_error": "HTTP 502"},
                {**handoff, "uid": "h3", "status": "delivered", "last_error": None},
            ],
        )


def test_every_figure_is_read_at_now(engine: Engine) -> None:
    assert read_metrics(engine, T) == Metrics(processes_alive={"run": 0, "serve": 0})
    populate(engine, T)
    add_engagement(engine)
    assert read_metrics(engine, T) == Metrics(
        messages_sent=8,  # every message ever accepted, whenever (a counter only grows) …
        messages_failed=9,  # … the dropped one in both
        messages_in_flight=2,
        messages_retrying=1,
        messages_unknown=1,
        enrollments_due=3,
        oldest_due_age_seconds=2 * 86_400.0,  # due two days before T
        webhook_lag_seconds=90.0,
        webhook_last_received_age_seconds=120.0,
        campaigns_paused=2,
        processes_alive={"run": 2, "serve": 2},
        handoffs_pending=2,
        handoffs_failing=1,
    )
    later = read_metrics(engine, T + timedelta(minutes=10))
    assert later.oldest_due_age_seconds == 2 * 86_400.0 + 600
    assert later.webhook_last_received_age_seconds == 720.0
    assert later.processes_alive == {"run": 0, "serve": 0}  # nobody beat since


def parsed(body: bytes) -> dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float]]]:
    """name -> (type, {labels: value}) as Prometheus' own parser reads the text."""
    return {
        family.name: (
            family.type,
            {tuple(sorted(s.labels.items())): s.value for s in family.samples},
        )
        for family in text_string_to_metric_families(body.decode())
    }


FIGURES = Metrics(
    messages_sent=1234,
    messages_failed=5,
    messages_in_flight=6,
    messages_retrying=7,
    messages_unknown=8,
    enrollments_due=9,
    oldest_due_age_seconds=10.5,
    webhook_lag_seconds=1.25,
    webhook_last_received_age_seconds=30.0,
    campaigns_paused=1,
    processes_alive={"run": 3, "serve": 4},
    handoffs_pending=11,
    handoffs_failing=2,
)


def test_the_exposition_names_types_and_values() -> None:
    body, content_type = exposition(FIGURES, "")
    assert content_type.startswith("text/plain; version=")
    assert b"drip_messages_sent_total 1234.0\n" in body
    assert parsed(body) == {
        "drip_messages_sent": ("counter", {(): 1234.0}),
        "drip_messages_failed": ("counter", {(): 5.0}),
        "drip_messages_in_flight": ("gauge", {(): 6.0}),
        "drip_messages_retrying": ("gauge", {(): 7.0}),
        "drip_messages_unknown": ("gauge", {(): 8.0}),
        "drip_enrollments_due": ("gauge", {(): 9.0}),
        "drip_enrollments_oldest_due_age_seconds": ("gauge", {(): 10.5}),
        "drip_campaigns_paused": ("gauge", {(): 1.0}),
        "drip_handoffs_pending": ("gauge", {(): 11.0}),
        "drip_handoffs_failing": ("gauge", {(): 2.0}),
        "drip_webhook_lag_seconds": ("gauge", {(): 1.25}),
        "drip_webhook_last_received_age_seconds": ("gauge", {(): 30.0}),
        "drip_processes_alive": ("gauge", {(("kind", "run"),): 3.0, (("kind", "serve"),): 4.0}),
    }
    none_yet, _ = exposition(Metrics(processes_alive={"run": 0, "serve": 0}), "")
    families = parsed(none_yet)
    assert families["drip_webhook_lag_seconds"] == ("gauge", {})  # no event: no made-up value
    assert families["drip_messages_sent"] == ("counter", {(): 0.0})


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    body, content_type = exposition(FIGURES, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert b"drip_messages_sent_total 1234.0" in body


@pytest.mark.slow  # `drip serve` subprocesses
def test_the_api_token_guards_metrics_by_default(folder: Path, folder_engine: Engine) -> None:
    populate(folder_engine, T)
    with drip_serve(folder, free_port(), env={"DRIP_API_TOKEN": TOKEN}) as base:
        assert request(base, "GET", "/metrics").status == 401
        wrong = request(base, "GET", "/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and wrong.headers["www-authenticate"] == "Bearer"
        answer = request(base, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=")
        assert answer.headers["cache-control"] == "no-store"
        families = parsed(answer.body)
        assert families["drip_messages_sent"] == ("counter", {(): 7.0})
        assert families["drip_messages_failed"] == ("counter", {(): 8.0})
        # this very process beats in the worker table, as kind serve
        assert families["drip_processes_alive"][1][(("kind", "serve"),)] >= 1.0


@pytest.mark.slow
def test_without_a_token_metrics_are_closed_open_or_off(folder: Path) -> None:
    with drip_serve(folder, free_port()) as base:
        closed = request(base, "GET", "/metrics")
        assert closed.status == 503
        assert "DRIP_API_TOKEN" in closed.text and "DRIP_WEB_METRICS=open" in closed.text
    with drip_serve(folder, free_port(), env={"DRIP_WEB_METRICS": "open"}) as base:
        answer = request(base, "GET", "/metrics")
        assert answer.status == 200 and b"drip_enrollments_due 0.0" in answer.body
    with drip_serve(
        folder, free_port(), env={"DRIP_WEB_METRICS": "off", "DRIP_API_TOKEN": TOKEN}
    ) as base:
        off = request(base, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert off.status == 404
        assert json.loads(request(base, "GET", "/healthz").body)["status"] == "ok"
