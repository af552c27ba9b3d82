"""``GET /healthz`` asks the database: 200 when it answers, 503 with the reason when it is down
(a closed port) or silent (a port that accepts and never answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.engine import Engine

from dripengine.clock import SystemClock
from dripengine.config import load_settings
from dripengine.funnel.sla import load_sla
from dripengine.storage.engine import make_engine
from dripengine.web import build_app
from dripengine.web.context import WebContext
from dripengine.web.health import DatabaseCheck
from tests.served import free_port, request

SKELETON = Path(__file__).resolve().parent.parent / "dripengine" / "skeleton"


@contextmanager
def serving(engine: Engine) -> Iterator[str]:
    """The app over ``engine`` under uvicorn on a loopback port, in a thread; its base URL."""
    settings = load_settings(env={})
    ctx = WebContext(settings, engine, load_sla(SKELETON / "sla.yaml"), SystemClock())
    port = free_port()
    config = uvicorn.Config(build_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def closed_port() -> int:
    return free_port()  # bound and closed again: nothing listens there


def test_a_database_that_answers_is_healthy(engine: Engine) -> None:
    with serving(engine) as base:
        answer = request(base, "GET", "/healthz")
    assert (answer.status, json.loads(answer.body)) == (200, {"status": "ok", "database": "ok"})
    assert answer.headers["cache-control"] == "no-store"


def test_a_stopped_database_is_503_with_the_reason_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/drip")
    caplog.set_level(logging.INFO, logger="dripengine.web")
    try:
        with serving(engine) as base:
            answers = [request(base, "GET", "/healthz") for _ in range(3)]
    finally:
        engine.dispose()
    for answer in answers:
        assert answer.status == 503
        assert json.loads(answer.body) == {
            "status": "unavailable",
            "database": "failed",
            "reason": "database unreachable",
        }
        assert b"127.0.0.1" not in answer.body  # the driver's words (host, port) stay in the log
    logged = [r.getMessage() for r in caplog.records if "/healthz" in r.getMessage()]
    assert len(logged) == 1, logged  # once when it went away, not at every probe
    assert logged[0].startswith("/healthz: the database is unreachable: connection")


def test_a_silent_database_is_503_after_the_timeout_one_check_for_all_probes() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    port = listener.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/drip")
    check = DatabaseCheck(engine, timeout=0.3)

    async def probes() -> list[str | None]:
        started = time.monotonic()
        answers = await asyncio.gather(*(check.problem() for _ in range(5)))
        assert time.monotonic() - started < 3  # all five waited for the same check
        running = check._running
        assert running is not None and not running.done()  # still hanging on the socket
        assert await check.problem() == "database no answer within 0.3 s"
        assert check._running is running  # a later probe joins it instead of starting another
        listener.close()  # the connection is reset: the hung check ends (with an error)
        with pytest.raises(Exception, match="connection"):
            await running
        return answers

    try:
        assert asyncio.run(probes()) == ["database no answer within 0.3 s"] * 5
    finally:
        listener.close()
        engine.dispose()
