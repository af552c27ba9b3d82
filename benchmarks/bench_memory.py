"""Peak memory of ``drip run --once`` with 1,000,000 enrolled leads against 10,000.

The data, as in real life: N leads, each with an active enrollment in the skeleton's
``lost-sql-winback`` campaign, of which only 500 are due now; the rest are scheduled one to six
weeks ahead. Built in the SQLite database of a ``drip init`` folder with one recursive-CTE
``INSERT … SELECT`` a table. Then ``python -m dripengine --now … run --once`` with the outbox
provider runs as a subprocess of its own, and its peak resident set size is read from
``os.wait4``'s resource usage for that very child (``ru_maxrss``, KiB on Linux) — no other process
is counted in it.

``memory.sqlite.1000k_vs_10k``: peak RSS (MB) with 1,000,000 leads (value) against 10,000
(baseline). Targets: ≤ 150 MB and ratio ≤ 1.2x. ``--quick``: 100,000 vs 10,000.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from benchmarks.bench_dispatch import NOW
from benchmarks.common import Context, compared
from dripengine.storage.engine import make_engine

DUE = 500
TARGET_MB = 150.0
TARGET_RATIO = 1.2
TIMEOUT = 600.0

# n = 1 … :count; lead n gets enrollment n (a fresh table numbers from 1)
LEADS = """
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count)
INSERT INTO lead (email, first_name, last_name, company, timezone, attributes, stage, score,
                  recycle_count, created_at, updated_at)
SELECT 'lead' || n || '@company' || (n % 997) || '.example', 'Lead' || n, 'Lastname' || n,
       'Company ' || (n % 997), 'Europe/Berlin', '{}', 'recycled', 0.0, 1,
       '2026-10-01 00:00:00.000000', '2026-11-20 00:00:00.000000'
FROM seq
"""
ENROLLMENTS = """
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count)
INSERT INTO enrollment (lead_id, campaign_id, campaign_version, status, track, current_step,
                        step_index, round, next_due_at, enrolled_at, updated_at)
SELECT n, 'lost-sql-winback', 1, 'active', 'cold', 'checkin', 0, 1,
       CASE WHEN n <= :due
            THEN strftime('%Y-%m-%d %H:%M:%S', :now, '-' || (1 + n % 3600) || ' seconds')
            ELSE strftime('%Y-%m-%d %H:%M:%S', :now, '+' || (7 + n % 35) || ' days',
                          '+' || (n % 86400) || ' seconds')
       END || '.000000',
       '2026-11-20 00:00:00.000000', '2026-11-20 00:00:00.000000'
FROM seq
"""


def drip_folder(ctx: Context, label: str) -> Path:
    """A ``drip init`` folder (SQLite ``drip.db``, the outbox provider)."""
    from dripengine.cli import main

    target = ctx.tmp / label
    env = {k: None for k in os.environ if k.startswith(("DRIP_", "SENDGRID_"))}
    result = CliRunner().invoke(main, ["init", str(target)], env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"drip init failed: {result.output}")
    return target


def populate(folder: Path, count: int) -> None:
    engine = make_engine(f"sqlite:///{folder / 'drip.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text(LEADS), {"count": count})
            connection.execute(
                text(ENROLLMENTS),
                {"count": count, "due": DUE, "now": NOW.strftime("%Y-%m-%d %H:%M:%S")},
            )
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


def peak_rss_mb(folder: Path) -> tuple[float, float, str]:
    """``drip run --once`` in ``folder``: its peak RSS (MB), seconds, and its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    env["DRIP_PROVIDER"] = "outbox"
    command = [sys.executable, "-m", "dripengine", "--now", NOW.isoformat(), "run", "--once"]
    log = folder / "run.log"
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    # wait4: this child's own resource usage (ru_maxrss in KiB on Linux), nobody else's
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text()
    if process.returncode != 0:
        raise RuntimeError(f"drip run --once exited {process.returncode}:\n{output[-2000:]}")
    return usage.ru_maxrss / 1024, seconds, output


def measure(ctx: Context, count: int) -> tuple[float, float, float, int]:
    folder = drip_folder(ctx, f"drip-{count}")
    started = time.perf_counter()
    populate(folder, count)
    built = time.perf_counter() - started
    mb, seconds, output = peak_rss_mb(folder)
    sent = len(list((folder / "outbox").rglob("*.eml")))
    if sent != DUE:
        raise RuntimeError(f"{count:,} leads: {sent} emails in the outbox, {DUE} due:\n{output}")
    shutil.rmtree(folder)
    return mb, seconds, built, sent


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    small, big = 10_000, ctx.size(1_000_000, 100_000)
    mb_small, _, _, _ = measure(ctx, small)
    mb_big, seconds, built, sent = measure(ctx, big)
    ratio = mb_big / mb_small
    yield compared(
        f"memory.sqlite.{big // 1000}k_vs_{small // 1000}k",
        mb_big,
        mb_small,
        "MB peak RSS of drip run --once",
        baseline_is=f"the same run with {small:,} enrolled leads",
        leads=big,
        baseline_leads=small,
        due=DUE,
        sent=sent,
        run_seconds=round(seconds, 1),
        build_seconds=round(built, 1),
        target=TARGET_MB,
        target_ratio=TARGET_RATIO,
        meets_target=mb_big <= TARGET_MB and ratio <= TARGET_RATIO,
    )
