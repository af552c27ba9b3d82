"""``GET /metrics``' database work over 1,000,000 emails and 3,000,000 events.

The history of :mod:`benchmarks.bench_stats` (200,000 leads, five emails each over 26 weeks, three
events an email, hand-offs; quick: 20,000 emails). Measured, each the best of 3 after a warm-up,
on SQLite and PostgreSQL:

- ``metrics.<db>.scrape``: :func:`dripengine.reports.metrics.read_metrics` (every query of a
  scrape), with each query's own time beside it (``queries_ms``);
- on PostgreSQL, each query's plan (``plans``: the node types of ``EXPLAIN``), to see the indexes
  at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from benchmarks.bench_stats import NOW, backends, best, populate
from benchmarks.common import Context, measurement, skipped
from dripengine import vocabulary as v
from dripengine.reports.metrics import read_metrics
from dripengine.reports.status import ALIVE_WITHIN
from dripengine.storage import status as queries
from dripengine.storage.pauses import paused

QUERIES: dict[str, Callable[[Connection], Any]] = {
    "message_totals": queries.message_totals,
    "oldest_due": lambda c: queries.oldest_due(c, NOW),
    "newest_event": lambda c: queries.newest_event(c, v.DELIVERED),
    "paused": paused,
    "alive_by_kind": lambda c: queries.alive_by_kind(c, NOW, ALIVE_WITHIN),
    "pending_handoffs": queries.pending_handoffs,
}


def _plan(connection: Connection, name: str) -> str:
    """The node types of PostgreSQL's plan for query ``name``: its statement and parameters as
    it sent them (caught on the way out), under ``EXPLAIN``."""
    sent: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", catch)
    try:
        QUERIES[name](connection)
    finally:
        event.remove(connection, "before_cursor_execute", catch)
    statement, parameters = sent[0]
    lines = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars()
    return " / ".join(line.strip().lstrip("-> ").split("  (")[0] for line in lines)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    emails = ctx.size(1_000_000, 20_000)
    for backend, fresh in backends(ctx):
        with fresh("metrics") as engine:
            populate(engine, emails)
            seconds, figures = best(lambda: read_metrics(engine, NOW))
            each: dict[str, float] = {}
            plans: dict[str, str] = {}
            with engine.connect() as connection:
                for name, query in QUERIES.items():
                    times = []
                    for _ in range(3):
                        started = time.perf_counter()
                        query(connection)
                        times.append(time.perf_counter() - started)
                    each[name] = round(min(times) * 1000, 2)
                    if backend == "postgres":
                        plans[name] = _plan(connection, name)
            yield measurement(
                f"metrics.{backend}.scrape",
                seconds * 1000,
                "ms",
                emails=emails,
                events=emails * 3,
                sent=figures.messages_sent,
                due=figures.enrollments_due,
                queries_ms=each,
                **({"plans": plans} if plans else {}),
            )
            engine.dispose()
    if ctx.postgres_url is None:
        yield skipped("metrics.postgres", ctx.postgres_skip_reason)
