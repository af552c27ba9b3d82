"""Tracking hits against ``drip serve``: the open pixel and the click redirect, requests/s and p99.

``drip serve`` runs as a subprocess in a ``drip init`` folder (one uvicorn worker, as started by
default; its access log goes to a file), on SQLite and, when configured, PostgreSQL. The database
holds N leads (stage ``recycled``) each with one sent message; every request uses a token of one
of them, in turn, so each hit is a new event that is stored and rescored (one ``Engagement.ingest``
transaction a request) — only hits on the same message within the same second are duplicates.

The load comes from ``wrk`` when it is installed (Debian: ``apt-get install wrk``): 2 threads,
``CONNECTIONS`` kept-alive connections, a Lua script walking the token paths from a random start
in each thread, latency percentiles from ``--latency``. Without it, from Python: ``CONNECTIONS``
threads in this process, each with its own kept-alive connection from one urllib3 pool, each
timing every request with ``perf_counter`` (every answer checked). A warm-up round is not
counted. On a 2-core machine the generator and the server share the CPU: the figures are a floor
for the server, not a ceiling (wrk, in C, takes less of it than the Python generator).

Lines: ``tracking.<db>.open`` and ``tracking.<db>.click`` in requests/s, with ``p50_ms`` and
``p99_ms``; every answer is checked (200 image/gif, 302 to the signed URL). And
``tracking.<db>.refused_token``: pixel requests with an altered token (404 before any database
work), the floor set by HTTP, Starlette and this load generator. With
``DRIP_BENCH_SERVE_WORKERS=1,2``, also ``drip serve --workers 2``: the same lines with
``.2_workers`` after the name.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3
from click.testing import CliRunner
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from benchmarks.common import (
    Context,
    measurement,
    postgres_engine,
    serve_workers,
    skipped,
    workers_suffix,
)
from dripengine.config import load_settings
from dripengine.engagement.tracking import click_token, open_token
from dripengine.storage.engine import make_engine
from dripengine.storage.models import Lead, Message
from dripengine.testing.serve_process import ServeProcess

CONNECTIONS = 16
TARGET_URL = "https://acme.example/pricing?utm_source=drip&utm_medium=email&utm_content=checkin"
GENERATOR = f"Python: {CONNECTIONS} threads, keep-alive urllib3 pool (wrk not installed)"
WRK = shutil.which("wrk")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("DRIP_BENCH_PATHS")) do paths[#paths + 1] = line end
local n = 0
function init(args)
  math.randomseed(tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 2147483647)
  n = math.random(#paths)
end
function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n], {["User-Agent"] = "USER_AGENT"})
end
""".replace("USER_AGENT", USER_AGENT)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    leads = ctx.size(3_000, 300)
    seconds = 1.5 if ctx.quick else 10.0
    for workers in serve_workers():
        folder = _init(ctx)
        engine = make_engine(load_settings(folder / "drip.toml").database_url)
        try:
            yield from _measure(ctx, folder, "sqlite", engine, None, leads, seconds, workers)
        finally:
            engine.dispose()
        if ctx.postgres_url is None:
            yield skipped("tracking.postgres", ctx.postgres_skip_reason)
            continue
        with postgres_engine(ctx, "tracking") as pg:
            url = pg.url.render_as_string(hide_password=False)
            yield from _measure(ctx, folder, "postgres", pg, url, leads, seconds, workers)


def _measure(
    ctx: Context,
    folder: Path,
    db: str,
    engine: Engine,
    db_url: str | None,
    leads: int,
    seconds: float,
    workers: int = 1,
) -> Iterator[dict[str, Any]]:
    uids = _populate(engine, leads)
    secret = load_settings(folder / "drip.toml").sender.secret_key
    opens = [f"/o/{open_token(secret, uid)}.gif" for uid in uids]
    clicks = [f"/c/{click_token(secret, uid, TARGET_URL, 'pricing')}" for uid in uids]
    with _serve(folder, db_url, workers) as port:
        # the floor: refused tokens (404, no database) show what HTTP and this generator cost
        refused = [path[:-6] + "x.gif" for path in opens]
        for name, paths, check in (
            ("open", opens, _is_pixel),
            ("click", clicks, _is_redirect),
            ("refused_token", refused, _is_not_found),
        ):
            _load(port, paths[: CONNECTIONS * 10], 0.0, check)  # warm-up: connections, caches
            label = f"{name}{workers_suffix(workers)}"
            if WRK is not None:
                yield _wrk(ctx, db, label, port, paths, seconds) | {"workers": workers}
                continue
            count, elapsed, latencies = _load(port, paths, seconds, check)
            latencies.sort()
            yield measurement(
                f"tracking.{db}.{label}",
                count / elapsed,
                "requests/s",
                p50_ms=round(_percentile(latencies, 0.50) * 1000, 2),
                p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
                requests=count,
                seconds=round(elapsed, 2),
                messages=len(paths),
                load_generator=GENERATOR,
                workers=workers,
            )


def _init(ctx: Context) -> Path:
    from dripengine.cli import main

    target = ctx.tmp / f"tracking-{uuid.uuid4().hex[:6]}"
    env = {k: None for k in os.environ if k.startswith("DRIP_")}
    result = CliRunner().invoke(main, ["init", str(target)], env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"drip init failed: {result.output}")
    return target


def _populate(engine: Engine, count: int) -> list[str]:
    """``count`` recycled leads with one message each, sent a day ago; their message uids."""
    now = datetime.now(UTC)
    sent = now - timedelta(days=1)
    tag = uuid.uuid4().hex[:6]
    lead_rows = [
        {
            "email": f"lead{n}-{tag}@bench.example",
            "stage": "recycled",
            "attributes": {},
            "created_at": sent,
            "updated_at": sent,
        }
        for n in range(count)
    ]
    lead_table = Lead.__table__  # type: ignore[attr-defined]
    message_table = Message.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(insert(lead_table), lead_rows)
        ids = connection.execute(
            select(lead_table.c.id).where(lead_table.c.email.like(f"%-{tag}@bench.example"))
        ).scalars()
        messages = [
            {
                "uid": uuid.uuid4().hex,
                "lead_id": lead_id,
                "campaign_id": "lost-sql-winback",
                "step_id": "checkin",
                "status": "sent",
                "provider": "outbox",
                "attempts": 1,
                "created_at": sent,
                "sent_at": sent,
            }
            for lead_id in ids
        ]
        connection.execute(insert(message_table), messages)
    return [m["uid"] for m in messages]


@contextmanager
def _serve(folder: Path, db_url: str | None, workers: int = 1) -> Iterator[int]:
    env = {"DRIP_DATABASE_URL": db_url} if db_url else {}
    args = ("--workers", str(workers)) if workers > 1 else ()
    with ServeProcess(folder, env=env, args=args, clean_env=True) as server:
        yield server.port


def _wrk(
    ctx: Context, db: str, name: str, port: int, paths: list[str], seconds: float
) -> dict[str, Any]:
    """One ``wrk`` run over ``paths``: requests/s and its latency percentiles."""
    assert WRK is not None
    script = ctx.tmp / "tracking.lua"
    script.write_text(WRK_SCRIPT)
    listing = ctx.tmp / f"tracking-{db}-{name}.txt"
    listing.write_text("\n".join(paths) + "\n")
    command = [
        WRK, "-t2", f"-c{CONNECTIONS}", f"-d{max(int(seconds), 1)}s", "--latency",
        "-s", str(script), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DRIP_BENCH_PATHS": str(listing)},
    )
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return measurement(
        f"tracking.{db}.{name}",
        rate,
        "requests/s",
        p50_ms=_wrk_ms(out, "50%"),
        p99_ms=_wrk_ms(out, "99%"),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        non_2xx_3xx=int(bad.group(1)) if bad else 0,
        messages=len(paths),
        load_generator=f"wrk: 2 threads, {CONNECTIONS} connections",
    )


def _wrk_ms(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


def _load(
    port: int, paths: list[str], seconds: float, check: Any
) -> tuple[int, float, list[float]]:
    """Requests from ``CONNECTIONS`` threads for ``seconds`` (0: each path once)."""
    pool = urllib3.HTTPConnectionPool(
        "127.0.0.1", port, maxsize=CONNECTIONS, block=True, retries=False
    )
    order = itertools.cycle(paths) if seconds else iter(paths)
    lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    errors: list[str] = []
    headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}
    started = time.perf_counter()
    stop_at = started + seconds

    def worker(mine: list[float]) -> None:
        while not errors:
            with lock:
                path = next(order, None)
            if path is None or (seconds and time.perf_counter() >= stop_at):
                return
            begin = time.perf_counter()
            response = pool.request("GET", path, headers=headers, redirect=False)
            mine.append(time.perf_counter() - begin)
            problem = check(response)
            if problem:
                errors.append(f"{path}: {problem}")

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    pool.close()
    if errors:
        raise RuntimeError(errors[0])
    merged = [value for mine in latencies for value in mine]
    return len(merged), elapsed, merged


def _is_pixel(response: Any) -> str | None:
    if response.status != 200 or response.headers.get("content-type") != "image/gif":
        return f"{response.status} {response.headers.get('content-type')}"
    return None


def _is_redirect(response: Any) -> str | None:
    if response.status != 302 or response.headers.get("location") != TARGET_URL:
        return f"{response.status} {response.headers.get('location')}"
    return None


def _is_not_found(response: Any) -> str | None:
    return None if response.status == 404 else f"{response.status}, expected 404"


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
