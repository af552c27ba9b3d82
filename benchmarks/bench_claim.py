"""Claiming a batch of 500 due enrollments with 1,000,000 enrollments in the table vs 10,000.

The table looks like real history: 1,000 enrollments due now (``active``, ``next_due_at`` in the
past), one in ten of the rest ``active`` but due later, the others ``completed`` long ago. A tenth
as many leads (ten campaigns each). Built in one ``INSERT … SELECT`` a table: ``generate_series``
on PostgreSQL, a recursive CTE on SQLite. Each measurement is
:func:`dripengine.storage.rounds.claim` of 500 in its own transaction, median of 7 (after one
warm-up), the leases released between claims. Target: 1M / 10k ≤ 2x, on SQLite and PostgreSQL.
``--quick``: 100,000 vs 10,000.

The composite index ``ix_enrollment_status_due (status, next_due_at)`` is what keeps this flat:
the claim's inner ``SELECT`` is a range scan of that index (``status = 'active' AND next_due_at <=
now``, already in ``next_due_at`` order, so the ``LIMIT`` stops it early) whatever the size of the
finished history. Each line carries the database's own plan for that ``SELECT`` (``plan``) and
``uses_index``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Engine

from benchmarks.common import Context, compared, postgres_engine, skipped, sqlite_engine
from dripengine.storage.messages import ENROLLMENT
from dripengine.storage.rounds import claim

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DUE = 1_000
BATCH = 500
REPEATS = 7
TARGET_RATIO = 2.0
INDEX = "ix_enrollment_status_due"
LEASE = timedelta(minutes=5)

# n = 1 … :count; lead (n - 1) / 10 + 1 (a fresh table numbers leads from 1), campaign n % 10
SQLITE_LEADS = """
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :leads)
INSERT INTO lead (email, attributes, stage, score, recycle_count, created_at, updated_at)
SELECT 'lead' || n || '@history.example', '{}', 'recycled', 0.0, 1,
       '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000'
FROM seq
"""
SQLITE_ENROLLMENTS = """
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count)
INSERT INTO enrollment (lead_id, campaign_id, campaign_version, status, track, current_step,
                        step_index, round, next_due_at, enrolled_at, updated_at, ended_at)
SELECT (n - 1) / 10 + 1, 'history-' || (n % 10), 1,
       CASE WHEN n <= :due OR n % 10 = 0 THEN 'active' ELSE 'completed' END,
       'cold', 'checkin', 0, 1,
       CASE WHEN n <= :due
            THEN strftime('%Y-%m-%d %H:%M:%S', :now, '-' || (1 + n % 3600) || ' seconds') || '.000000'
            WHEN n % 10 = 0
            THEN strftime('%Y-%m-%d %H:%M:%S', :now, '+' || (1 + n % 90) || ' days') || '.000000'
       END,
       '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000',
       CASE WHEN n <= :due OR n % 10 = 0 THEN NULL ELSE '2025-06-01 00:00:00.000000' END
FROM seq
"""
POSTGRES_LEADS = """
INSERT INTO lead (email, attributes, stage, score, recycle_count, created_at, updated_at)
SELECT 'lead' || n || '@history.example', '{}'::jsonb, 'recycled', 0.0, 1,
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00'
FROM generate_series(1, :leads) AS n
"""
POSTGRES_ENROLLMENTS = """
INSERT INTO enrollment (lead_id, campaign_id, campaign_version, status, track, current_step,
                        step_index, round, next_due_at, enrolled_at, updated_at, ended_at)
SELECT (n - 1) / 10 + 1, 'history-' || (n % 10), 1,
       CASE WHEN n <= :due OR n % 10 = 0 THEN 'active' ELSE 'completed' END,
       'cold', 'checkin', 0, 1,
       CASE WHEN n <= :due THEN CAST(:now AS timestamptz) - make_interval(secs => 1 + n % 3600)
            WHEN n % 10 = 0 THEN CAST(:now AS timestamptz) + make_interval(days => 1 + n % 90)
       END,
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00',
       CASE WHEN n <= :due OR n % 10 = 0 THEN NULL ELSE timestamptz '2025-06-01 00:00:00+00' END
FROM generate_series(1, :count) AS n
"""


def populate(engine: Engine, count: int, due: int = DUE) -> None:
    """``count`` enrollments (``due`` of them due at NOW) over ``count / 10`` leads."""
    leads = max(1, (count + 9) // 10)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgres:
            connection.execute(text(POSTGRES_LEADS), {"leads": leads})
            connection.execute(
                text(POSTGRES_ENROLLMENTS), {"count": count, "due": due, "now": NOW.isoformat()}
            )
        else:
            connection.execute(text(SQLITE_LEADS), {"leads": leads})
            connection.execute(
                text(SQLITE_ENROLLMENTS),
                {"count": count, "due": due, "now": NOW.strftime("%Y-%m-%d %H:%M:%S")},
            )
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE enrollment"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def plan(engine: Engine) -> str:
    """The database's plan for the claim's inner SELECT (the same one :func:`claim` runs)."""
    due = (
        select(ENROLLMENT.c.id)
        .where(
            ENROLLMENT.c.status == "active",
            ENROLLMENT.c.next_due_at <= NOW,
            (ENROLLMENT.c.lease_until.is_(None)) | (ENROLLMENT.c.lease_until < NOW),
        )
        .order_by(ENROLLMENT.c.next_due_at)
        .limit(BATCH)
    )
    compiled = due.compile(dialect=engine.dialect)
    params = compiled.construct_params()
    processors: dict[str, Any] = dict(compiled._bind_processors)  # UTCDateTime → driver value
    values = {k: processors[k](v) if k in processors else v for k, v in params.items()}
    sql = str(compiled)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql(f"EXPLAIN {sql}", values).scalars().all()
            return " | ".join(r.strip() for r in rows)
        positional = tuple(values[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", positional).all()
        return " | ".join(str(r[-1]) for r in rows)


def claim_ms(engine: Engine) -> float:
    """Median ms of a 500-claim, the leases released after each."""
    release = (
        update(ENROLLMENT)
        .where(ENROLLMENT.c.id.in_(bindparam("ids", expanding=True)))
        .values(lease_owner=None, lease_until=None)
    )
    times = []
    for attempt in range(REPEATS + 1):
        started = time.perf_counter()
        with engine.begin() as connection:
            ids = claim(connection, "bench", NOW, LEASE, BATCH)
        elapsed = time.perf_counter() - started
        assert len(ids) == BATCH, len(ids)
        with engine.begin() as connection:
            connection.execute(release, {"ids": ids})
        if attempt:  # the first one warms the caches
            times.append(elapsed * 1000)
    return statistics.median(times)


def backends(
    ctx: Context,
) -> Iterator[tuple[str, Callable[[str], AbstractContextManager[Engine]]]]:
    yield "sqlite", lambda label: nullcontext(sqlite_engine(ctx, label))
    if ctx.postgres_url is not None:
        yield "postgres", lambda label: postgres_engine(ctx, label)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    small, big = 10_000, ctx.size(1_000_000, 100_000)
    for backend, fresh in backends(ctx):
        figures: dict[int, tuple[float, float, str]] = {}
        for count in (small, big):
            with fresh(f"claim{count}") as engine:
                started = time.perf_counter()
                populate(engine, count)
                built = time.perf_counter() - started
                figures[count] = (claim_ms(engine), built, plan(engine))
                engine.dispose()
        ms_big, built_big, plan_big = figures[big]
        ms_small, _, _ = figures[small]
        ratio = ms_big / ms_small
        yield compared(
            f"claim.{backend}.{big // 1000}k_vs_{small // 1000}k",
            ms_big,
            ms_small,
            "ms per claim of 500",
            baseline_is=f"the same claim with {small:,} enrollments",
            enrollments=big,
            baseline_enrollments=small,
            due=DUE,
            build_seconds=round(built_big, 1),
            plan=plan_big,
            uses_index=INDEX in plan_big,
            target_ratio=TARGET_RATIO,
            meets_target=ratio <= TARGET_RATIO,
        )
    if ctx.postgres_url is None:
        yield skipped("claim.postgres", ctx.postgres_skip_reason)
