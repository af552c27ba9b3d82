"""The figures of ``GET /metrics``, read from the database at ``now``.

Read from the database, not counted in a process: every `drip serve` process answers a scrape
with the same figures, whichever of them the load balancer picks, and a restart resets nothing.
Six aggregate queries, each over an index (:mod:`dripengine.storage.status`); the names and
types Prometheus sees are :mod:`dripengine.web.metrics`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dripengine import vocabulary as v
from dripengine.reports.status import ALIVE_WITHIN
from dripengine.storage import Engine
from dripengine.storage import status as queries
from dripengine.storage.pauses import paused

KINDS = ("run", "serve")  # the process kinds in the worker table


@dataclass(frozen=True)
class Metrics:
    # every message a provider accepted, counted by its sent_at: one it drops later (turned
    # failed) stays counted here, so the figure only grows (a Prometheus counter must)
    messages_sent: int = 0
    messages_failed: int = 0  # every message that failed for good (only grows)
    messages_in_flight: int = 0  # recorded as sending, the provider's answer not yet recorded
    messages_retrying: int = 0
    messages_unknown: int = 0  # interrupted by a crash, not resent
    enrollments_due: int = 0  # active enrollments whose next step is due now: the queue
    oldest_due_age_seconds: float = 0.0  # how long the most overdue of them has waited
    # the newest delivered event an ESP reported: how late it came, how long ago (None: none yet)
    webhook_lag_seconds: float | None = None
    webhook_last_received_age_seconds: float | None = None
    campaigns_paused: int = 0  # by the complaint breaker, until `drip campaigns resume`
    processes_alive: dict[str, int] = field(default_factory=dict)  # run / serve -> how many
    handoffs_pending: int = 0
    handoffs_failing: int = 0


def read_metrics(engine: Engine, now: datetime) -> Metrics:
    with engine.connect() as connection:
        by_status, accepted = queries.message_totals(connection)
        due, oldest = queries.oldest_due(connection, now)
        newest = queries.newest_event(connection, v.DELIVERED)
        paused_now = len(paused(connection))
        alive = queries.alive_by_kind(connection, now, ALIVE_WITHIN)
        pending, failing = queries.pending_handoffs(connection)
    lag = age = None
    if newest is not None:
        occurred, received = newest
        lag = max((received - occurred).total_seconds(), 0.0)
        age = max((now - received).total_seconds(), 0.0)
    return Metrics(
        messages_sent=accepted,
        messages_failed=by_status.get("failed", 0),
        messages_in_flight=by_status.get("sending", 0),
        messages_retrying=by_status.get("retry", 0),
        messages_unknown=by_status.get("unknown", 0),
        enrollments_due=due,
        oldest_due_age_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        webhook_lag_seconds=lag,
        webhook_last_received_age_seconds=age,
        campaigns_paused=paused_now,
        processes_alive={kind: alive.get(kind, 0) for kind in KINDS},
        handoffs_pending=pending,
        handoffs_failing=failing,
    )


__all__ = ["KINDS", "Metrics", "read_metrics"]
