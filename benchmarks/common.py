"""What every benchmark shares: the context it runs in, scratch databases, and timing.

A benchmark module ``benchmarks/bench_<name>.py`` exposes ``run(ctx: Context) -> Iterable[dict]``
and yields one dict a measurement, made with :func:`measurement` (or :func:`skipped` when it cannot
measure, with the reason). ``ctx.quick`` asks for small sizes (the smoke test).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from dripengine.storage.engine import make_engine, upgrade

POSTGRES_ENVS = ("DRIP_BENCH_POSTGRES_URL", "DRIP_TEST_POSTGRES_URL")
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where and how big: a scratch folder, quick mode, and the PostgreSQL server (if any)."""

    tmp: Path
    quick: bool = False
    postgres_url: str | None = None

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def postgres_skip_reason(self) -> str:
        return f"PostgreSQL figures need {' or '.join(POSTGRES_ENVS)} (a server URL)"


SERVE_WORKERS_ENV = "DRIP_BENCH_SERVE_WORKERS"


def serve_workers() -> list[int]:
    """The ``drip serve --workers`` counts the HTTP benchmarks (``ingest``, ``tracking``) run
    with: ``DRIP_BENCH_SERVE_WORKERS=1,2`` (default ``1``). Lines of a count other than 1 carry
    its suffix (``tracking.postgres.open.2_workers``), so the names of one worker stay as they
    were."""
    raw = os.environ.get(SERVE_WORKERS_ENV, "1")
    try:
        counts = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"{SERVE_WORKERS_ENV}={raw!r}: give worker counts, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise SystemExit(f"{SERVE_WORKERS_ENV}={raw!r}: give worker counts of 1 or more, e.g. 1,2")
    return counts


def workers_suffix(workers: int) -> str:
    return "" if workers == 1 else f".{workers}_workers"


def postgres_url_from_env() -> str | None:
    return next((os.environ[name] for name in POSTGRES_ENVS if os.environ.get(name)), None)


def measurement(name: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """One output line: ``name``, ``value``, ``unit`` and whatever else describes it."""
    return {"name": name, "value": round(value, 3), "unit": unit, **extra}


def compared(name: str, value: float, baseline: float, unit: str, **extra: Any) -> dict[str, Any]:
    """A measurement beside its baseline run; ``ratio`` is value / baseline."""
    ratio = value / baseline if baseline else None
    return measurement(
        name,
        value,
        unit,
        baseline=round(baseline, 3),
        ratio=None if ratio is None else round(ratio, 2),
        **extra,
    )


def skipped(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "skipped": True, "reason": reason}


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """``action()``'s result and the seconds it took."""
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def sqlite_engine(ctx: Context, label: str) -> Engine:
    """A fresh, migrated SQLite file database in the scratch folder."""
    path = ctx.tmp / f"{label}-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


@contextmanager
def postgres_engine(ctx: Context, label: str) -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database, dropped afterwards. Needs ``ctx.postgres_url``."""
    if ctx.postgres_url is None:
        raise RuntimeError(ctx.postgres_skip_reason)
    name = f"drip_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ctx.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(ctx.postgres_url).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
