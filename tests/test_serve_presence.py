"""Each `drip serve` process in the ``worker`` table (kind ``serve``): in when it starts, beating
while it runs, stopped when it exits cleanly; `drip status` shows them beside the workers."""

from __future__ import annotations

import json
import logging
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.clock import SystemClock
from dripengine.reports.status import read_status
from dripengine.storage.engine import make_engine
from dripengine.storage.models import WORKER
from dripengine.testing.serve_process import ServeProcess, free_port
from dripengine.web.presence import ServeHeartbeat
from tests.clirun import drip
from tests.waiting import wait_for


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(WORKER).order_by(WORKER.c.id))]


def test_a_heartbeat_inserts_beats_and_stops(engine: Engine) -> None:
    beat = ServeHeartbeat(engine, SystemClock(), every=0.05)
    beat.start()
    try:
        [row] = rows(engine)
        assert (row["id"], row["kind"], row["pid"], row["provider"]) == (
            beat.id,
            "serve",
            os.getpid(),
            None,
        )
        first: datetime = row["heartbeat_at"]
        wait_for(lambda: rows(engine)[0]["heartbeat_at"] > first, 10, "a second beat")
        status = read_status(engine, SystemClock().now())
        assert (status.serve_alive, status.workers_alive) == (1, 0)  # not a `drip run` worker
    finally:
        beat.stop()
    [row] = rows(engine)
    assert row["stopped_at"] is not None and row["started_at"] == first
    status = read_status(engine, SystemClock().now())
    assert (status.serve_alive, status.serve_stopped) == (0, 1)


def test_a_database_away_costs_a_log_line_not_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/drip")
    caplog.set_level(logging.WARNING, logger="dripengine.web")
    beat = ServeHeartbeat(engine, SystemClock(), every=0.05)
    try:
        beat.start()
        wait_for(lambda: len(caplog.records) >= 2, 10, "two failed beats")
        beat.stop()
    finally:
        engine.dispose()
    assert caplog.records[0].getMessage().startswith(f"serve heartbeat {beat.id} not written: ")


@pytest.mark.slow  # `drip serve --workers 2`: three processes
def test_drip_serve_with_two_workers_shows_two_then_stops_both(
    folder: Path, folder_engine: Engine
) -> None:
    with ServeProcess(folder, args=("--workers", "2"), port=free_port()) as server:
        wait_for(lambda: len(rows(folder_engine)) == 2, 30, "a row for each uvicorn worker")
        now = SystemClock().now().isoformat()  # the processes beat on the wall clock
        code, out, err = drip("--now", now, "status", "--format", "json")  # the last --now wins
        assert code == 0, err
        status = json.loads(out)
        assert (status["serve_alive"], status["workers_alive"]) == (2, 0)
        pids = {r["pid"] for r in rows(folder_engine)}
        assert len(pids) == 2 and server.process is not None and server.process.pid not in pids
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    stopped = [r["stopped_at"] is not None for r in rows(folder_engine)]
    assert stopped == [True, True]  # a clean exit says so: not left to look dead
