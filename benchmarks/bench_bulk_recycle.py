"""Bulk recycle (`drip recycle --csv`): rows/s on SQLite and PostgreSQL.

The bulk path decides the rows in batches of 500 (one load query a table, one executemany a
statement, one transaction a batch). Baseline, side by side: the same rows recycled one command at
a time, each in its own transaction (what a script calling `drip recycle EMAIL …` per lead would do,
minus process start-up).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from benchmarks.common import (
    Context,
    compared,
    measurement,
    postgres_engine,
    skipped,
    sqlite_engine,
    timed,
)
from dripengine.campaigns import load_campaigns
from dripengine.cli.scaffold import SKELETON
from dripengine.funnel.recycle import recycle
from dripengine.funnel.recycle_csv import recycle_file
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.funnel.sla import load_sla

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
PAIRS = [
    ("mql", "bad_timing"),
    ("sal", "no_need_yet"),
    ("sql", "no_budget"),
    ("sql", "went_silent"),
    ("opportunity", "chose_competitor"),
    ("mql", "not_a_fit"),
]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "", "Europe/London"]


def write_deals(path: Path, rows: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "email",
                "from_stage",
                "reason",
                "note",
                "first_name",
                "company",
                "timezone",
                "industry",
            ]
        )
        for i in range(rows):
            stage, reason = rng.choice(PAIRS)
            writer.writerow(
                [
                    f"lead{i}@company{i % 1500}.example",
                    stage,
                    reason,
                    "lost in Q3 review",
                    f"Name{i}",
                    f"Company {i % 1500}",
                    rng.choice(ZONES),
                    rng.choice(["saas", "retail", "logistics"]),
                ]
            )
    return path


def _context() -> RecycleContext:
    sla = load_sla(SKELETON / "sla.yaml")
    campaigns = load_campaigns(SKELETON / "campaigns", known_reasons=sla.known_reasons)
    return RecycleContext(campaigns=campaigns, sla=sla, now=NOW)


def _one_by_one(engine: Engine, path: Path, limit: int) -> int:
    ctx = _context()
    with path.open(encoding="utf-8") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            if n >= limit:
                return n
            recycle(
                engine,
                RecycleRequest(row["email"], row["reason"], row["from_stage"], note=row["note"]),
                ctx,
            )
    return limit


def _bulk(engine: Engine, path: Path) -> int:
    report = recycle_file(engine, path, _context())
    assert not report.errors, report.errors[:3]
    return report.rows_read


def run(ctx: Context) -> Iterator[dict[str, Any]]:
    rows = ctx.size(10_000, 300)
    sample = ctx.size(1_000, 100)
    deals = write_deals(ctx.tmp / "lost-deals.csv", rows)

    engine = sqlite_engine(ctx, "recycle-base")
    done, base_seconds = timed(lambda: _one_by_one(engine, deals, sample))
    engine.dispose()
    baseline = done / base_seconds
    engine = sqlite_engine(ctx, "recycle")
    count, seconds = timed(lambda: _bulk(engine, deals))
    engine.dispose()
    yield compared(
        "bulk_recycle.sqlite",
        count / seconds,
        baseline,
        "rows/s",
        rows=count,
        baseline_is=f"one transaction per row, first {sample} rows",
    )

    if ctx.postgres_url is None:
        yield skipped("bulk_recycle.postgres", ctx.postgres_skip_reason)
        return
    with postgres_engine(ctx, "recycle") as pg:
        count, seconds = timed(lambda: _bulk(pg, deals))
    yield measurement("bulk_recycle.postgres", count / seconds, "rows/s", rows=count)
