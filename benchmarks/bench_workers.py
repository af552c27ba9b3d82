"""Several ``drip run --once`` processes on one PostgreSQL database: 2 workers against 1.

Real processes, as an operator runs them: ``python -m dripengine --now … run --once`` in a
``drip init`` folder with ``DRIP_PROVIDER=sendgrid``, ``DRIP_SENDING_BATCH_SIZE=200`` (so that both
workers get batches) and ``DRIP_DATABASE_URL`` naming a fresh scratch database. The data: N leads,
each with its first ``lost-sql-winback`` step due now (``bench_dispatch.populate``: Core bulk
inserts). The SendGrid stand-in runs in its own process, sleeping 50 ms a request and 100 ms a new
connection; a fresh stand-in and a fresh, identical database for each run.

``workers.postgres.2_vs_1``: emails/s of 2 worker processes started together (value) against 1
(baseline), wall time from starting the processes until the last one exits — process start-up
(Python imports, loading the campaigns) included, the same for both. Every email is checked as sent
exactly once from the database afterwards. Target ratio ≥ 1.6x. ``--quick``: 600 emails.
PostgreSQL only (SQLite has one writer); skipped without a server URL.

Each run also reads the machine's busy CPU time (``/proc/stat``, all cores: the workers, the
stand-in, PostgreSQL and anything else running) and says how many cores were busy. When the pair
keeps every core busy, 2 workers cannot beat 1 by more than ``cores * T1 / CPU2`` (``T1`` the one
worker's wall time, ``CPU2`` the CPU seconds the pair's run used): ``cpu_ceiling_ratio`` in the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from benchmarks.bench_dispatch import NOW, populate
from benchmarks.common import Context, compared, postgres_engine, skipped
from benchmarks.fast_standin import fast_standin_process
from dripengine.storage.messages import MESSAGE

BATCH = 200
TARGET_RATIO = 1.6
TIMEOUT = 600.0


def drip_folder(ctx: Context) -> Path:
    """A folder made by ``drip init`` (its own SQLite file is not used: the env names PostgreSQL)."""
    from dripengine.cli import main

    target = ctx.tmp / "acme-drip"
    env = {k: None for k in os.environ if k.startswith(("DRIP_", "SENDGRID_"))}
    result = CliRunner().invoke(main, ["init", str(target)], env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"drip init failed: {result.output}")
    return target


def busy_cpu_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``); None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def drain(
    folder: Path, db_url: str, url: str, key: str, workers: int
) -> tuple[float, float | None]:
    """Seconds for ``workers`` processes started together to drain everything due, and the busy
    CPU seconds of the whole machine meanwhile (None where ``/proc/stat`` is not there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    env.update(
        DRIP_DATABASE_URL=db_url,
        DRIP_PROVIDER="sendgrid",
        SENDGRID_API_KEY=key,
        DRIP_SENDGRID_HOST=url,
        DRIP_SENDING_BATCH_SIZE=str(BATCH),
        DRIP_SENDING_MAX_PER_LEAD_PER_WEEK="1000",
    )
    command = [sys.executable, "-m", "dripengine", "--now", NOW.isoformat(), "run", "--once"]
    logs = [folder / f"worker-{workers}-{n}.log" for n in range(workers)]
    cpu_before = busy_cpu_seconds()
    started = time.perf_counter()
    processes = []
    for log in logs:
        with log.open("w") as out:
            processes.append(
                subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    seconds = time.perf_counter() - started
    cpu_after = busy_cpu_seconds()
    if any(codes):
        output = "\n".join(log.read_text()[-2000:] for log in logs)
        raise RuntimeError(f"workers exited {codes}:\n{output}")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return seconds, cpu


def one_run(ctx: Context, folder: Path, count: int, workers: int) -> tuple[float, float | None]:
    """Emails a second, and the machine's busy CPU seconds during the run."""
    with postgres_engine(ctx, f"workers{workers}") as engine:
        populate(engine, count)
        db_url = engine.url.render_as_string(hide_password=False)
        with fast_standin_process(per_request=0.05, per_connection=0.1) as (url, key):
            seconds, cpu = drain(folder, db_url, url, key, workers)
        with engine.connect() as connection:
            sent = connection.execute(
                select(func.count(), func.count(func.distinct(MESSAGE.c.enrollment_id))).where(
                    MESSAGE.c.status == "sent"
                )
            ).one()
        engine.dispose()
    if tuple(sent) != (count, count):
        raise RuntimeError(f"{workers} worker(s): {sent[0]} sent to {sent[1]} of {count}")
    return count / seconds, cpu


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    if ctx.postgres_url is None:
        yield skipped("workers.postgres", ctx.postgres_skip_reason)
        return
    count = ctx.size(6_000, 600)
    folder = drip_folder(ctx)
    one, cpu_one = one_run(ctx, folder, count, 1)
    two, cpu_two = one_run(ctx, folder, count, 2)
    cores = os.cpu_count() or 1
    machine: dict[str, Any] = {"cores": cores}
    if cpu_one is not None and cpu_two is not None:
        wall_one, wall_two = count / one, count / two
        machine.update(
            cpu_s={"1_worker": round(cpu_one, 2), "2_workers": round(cpu_two, 2)},
            cores_busy={
                "1_worker": round(cpu_one / wall_one, 2),
                "2_workers": round(cpu_two / wall_two, 2),
            },
            cpu_ceiling_ratio=round(cores * wall_one / cpu_two, 2),
        )
    yield compared(
        "workers.postgres.2_vs_1",
        two,
        one,
        "emails/s",
        baseline_is="1 worker process draining an identical fresh set",
        emails=count,
        batch_size=BATCH,
        latency="50 ms a request + 100 ms a new connection",
        timing="wall time from starting the processes to the last exit (start-up included)",
        target_ratio=TARGET_RATIO,
        meets_target=two / one >= TARGET_RATIO,
        **machine,
    )
