"""Several `drip run` processes on one PostgreSQL database, and a worker killed with SIGKILL.

Real processes, as an operator runs them: `python -m dripengine … run` in a `drip init` folder,
PostgreSQL as the queue, the SendGrid stand-in (in a process of its own) or the outbox as the
provider. What a lead received is read from the provider's side (the stand-in's accepted requests,
the outbox's files), never from our own bookkeeping alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import func, insert, literal, select, text
from sqlalchemy.engine import Engine

from dripengine.storage.engine import make_engine
from dripengine.storage.messages import ENROLLMENT, MESSAGE
from dripengine.storage.rounds import LEAD
from tests.conftest import PG_ENV
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.slow,  # several `drip run` subprocesses, thousands of messages, a kill -9
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get(PG_ENV),
        reason=f"several workers need PostgreSQL: set {PG_ENV} "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)",
    ),
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]

T = datetime.fromisoformat("2026-11-24T10:00:00+00:00")  # Tuesday, 11:00 in Berlin: in the window
CAMPAIGN, STEP = "lost-sql-winback", "checkin"

# The stand-in in its own process (so its threads do not share a GIL with anything else), telling
# on exit every drip_uid it accepted.
STANDIN = """
import json, sys
from dripengine.testing.sendgrid_standin import SendGridStandIn
with SendGridStandIn(sys.argv[1]) as standin:
    print(standin.url, flush=True)
    sys.stdin.read()
    print(json.dumps({
        "requests": standin.requests,
        "uids": standin.custom_arg_values("drip_uid"),
        "personalizations": sum(len(a.payload["personalizations"]) for a in standin.accepted),
    }), flush=True)
"""
API_KEY = "SG.workers-test.0123456789"


@pytest.fixture
def pg(folder: Path, db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def enroll_due(engine: Engine, count: int) -> None:
    """``count`` leads, each with an active enrollment whose first step (checkin) is due at T."""
    entered = T - timedelta(days=2)
    with engine.begin() as connection:
        connection.execute(
            insert(LEAD),
            [
                {
                    "email": f"lead{i:05d}@acme{i % 50}.example",
                    "first_name": f"Lead{i}",
                    "company": f"Company {i % 50}",
                    "timezone": "Europe/Berlin",
                    "attributes": {},
                    "stage": "recycled",
                    "score": 0.0,
                    "recycle_count": 1,
                    "created_at": entered,
                    "updated_at": entered,
                }
                for i in range(count)
            ],
        )
        columns = {
            "lead_id": LEAD.c.id,
            "campaign_id": literal(CAMPAIGN),
            "campaign_version": literal(1),
            "status": literal("active"),
            "track": literal("cold"),
            "current_step": literal(STEP),
            "step_index": literal(0),
            "round": literal(1),
            "next_due_at": literal(T - timedelta(hours=1), ENROLLMENT.c.next_due_at.type),
            "enrolled_at": literal(entered, ENROLLMENT.c.enrolled_at.type),
            "updated_at": literal(entered, ENROLLMENT.c.updated_at.type),
        }
        connection.execute(insert(ENROLLMENT).from_select(list(columns), select(*columns.values())))


def drip_env(db_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    return {**env, "DRIP_DATABASE_URL": db_url, **settings}


def start_drip(
    folder: Path, env: dict[str, str], now: datetime, *args: str
) -> subprocess.Popen[str]:
    log = (folder / f"drip-{time.monotonic_ns()}.log").open("w")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dripengine", "--now", now.isoformat(), "run", *args],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        log.close()  # the child has its own copy


def finish(process: subprocess.Popen[str], timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def logs(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("drip-*.log")))


@contextmanager
def standin() -> Iterator[tuple[str, dict[str, Any]]]:
    """A SendGrid stand-in process: yields its URL and a dict filled in with what it accepted."""
    seen: dict[str, Any] = {}
    process = subprocess.Popen(
        [sys.executable, "-c", STANDIN, API_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    try:
        url = stdout.readline().strip()
        assert url.startswith("http://"), f"the stand-in did not start (said {url!r})"
        yield url, seen
    finally:
        out, _ = process.communicate(input="", timeout=60)
        seen.update(json.loads(out.strip().splitlines()[-1]))


def counts(engine: Engine, sql: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(text(sql))}


def test_three_workers_drain_5000_due_messages_each_sent_exactly_once(
    folder: Path, db_url: str, pg: Engine
) -> None:
    total = 5000
    enroll_due(pg, total)
    with standin() as (url, seen):
        env = drip_env(
            db_url,
            DRIP_PROVIDER="sendgrid",
            SENDGRID_API_KEY=API_KEY,
            DRIP_SENDGRID_HOST=url,
            DRIP_SENDING_BATCH_SIZE="200",
        )
        workers = [start_drip(folder, env, T, "--once") for _ in range(3)]
        codes = [finish(w, timeout=120) for w in workers]
    assert codes == [0, 0, 0], logs(folder)

    uids = seen["uids"]
    assert len(uids) == total == seen["personalizations"], logs(folder)
    assert not [uid for uid, n in Counter(uids).items() if n > 1]  # none twice
    with pg.connect() as connection:
        sent = set(
            connection.execute(select(MESSAGE.c.uid).where(MESSAGE.c.status == "sent")).scalars()
        )
        due = connection.execute(
            select(func.count()).where(
                ENROLLMENT.c.status == "active", ENROLLMENT.c.next_due_at <= T
            )
        ).scalar()
        per_lead = Counter(
            connection.execute(
                select(MESSAGE.c.lead_id).where(
                    MESSAGE.c.status.in_(["sent", "sending", "unknown"])
                )
            ).scalars()
        )
    assert sent == set(uids)  # what SendGrid took is exactly what we recorded as sent
    assert due == 0  # nothing left due
    assert counts(pg, "SELECT status, count(*) FROM message GROUP BY status") == {"sent": total}
    # the frequency cap (3 a week) did not hold anyone back, and nobody got two
    assert len(per_lead) == total and set(per_lead.values()) == {1}
    waiting = counts(
        pg, "SELECT current_step, count(*) FROM enrollment WHERE status = 'active' GROUP BY 1"
    )
    assert waiting == {"whats-new": total}  # every enrollment moved on to its next step
    # each worker said what it did; together they sent every message once
    reported = [int(line.split()[0]) for line in logs(folder).splitlines() if " sent" in line]
    assert sum(reported) == total, logs(folder)


def test_kill_9_mid_batch_then_restart_loses_none_and_sends_none_twice(
    folder: Path, db_url: str, pg: Engine
) -> None:
    total = 2000
    enroll_due(pg, total)
    outbox = folder / "outbox"
    env = drip_env(
        db_url,
        DRIP_PROVIDER="outbox",
        DRIP_SENDING_TICK_SECONDS="0.2",
        DRIP_SENDING_LEASE_SECONDS="10",
        DRIP_SENDING_BATCH_SIZE="500",
    )
    daemon = start_drip(folder, env, T)
    try:
        wait_for(  # checked every 2 ms at most: the kill must land mid-batch
            lambda: daemon.poll() is not None or next(outbox.rglob("*.eml"), None) is not None,
            timeout=60,
            what="the first .eml in the outbox",
            interval=0.002,
        )
        daemon.send_signal(signal.SIGKILL)
    finally:
        code = finish(daemon, timeout=30)
    assert code == -signal.SIGKILL, logs(folder)
    at_kill = counts(pg, "SELECT status, count(*) FROM message GROUP BY status")
    files_at_kill = len(list(outbox.rglob("*.eml")))
    in_flight = at_kill.get("sending", 0)
    assert in_flight and files_at_kill < total, (at_kill, files_at_kill)  # killed mid-batch
    written_in_flight = files_at_kill - at_kill.get("sent", 0)  # files of 'sending' messages

    # a fresh worker, after the dead one's lease (10 s) ran out
    later = T + timedelta(minutes=1)
    for _ in range(3):
        assert finish(start_drip(folder, env, later, "--once"), timeout=60) == 0, logs(folder)
        with pg.connect() as connection:
            due = connection.execute(
                select(func.count()).where(
                    ENROLLMENT.c.status == "active", ENROLLMENT.c.next_due_at <= later
                )
            ).scalar()
        if not due:
            break
    assert due == 0, logs(folder)

    files = [p.stem for p in outbox.rglob("*.eml")]
    assert len(files) == len(set(files)) == total, (at_kill, files_at_kill)  # one per enrollment
    with pg.connect() as connection:
        enrollments = set(connection.execute(select(ENROLLMENT.c.id)).scalars())
        rows = connection.execute(
            select(
                MESSAGE.c.uid, MESSAGE.c.enrollment_id, MESSAGE.c.status, MESSAGE.c.attempts
            ).where(MESSAGE.c.step_id == STEP)
        ).all()
    assert len(rows) == total and {r.enrollment_id for r in rows} == enrollments
    assert {r.status for r in rows} == {"sent"}  # none lost, no 'sending' left
    assert {r.uid for r in rows} == set(files)  # each file is one message, named by its uid
    # the restart resolved every message the dead worker left in flight, and wrote again only
    # those whose file was not there: a message whose file existed was not sent a second time
    assert f"{in_flight} interrupted message(s) resolved" in logs(folder)
    resent = sum(1 for r in rows if r.attempts == 2)
    assert resent == in_flight - written_in_flight, (at_kill, files_at_kill)
