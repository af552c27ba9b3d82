"""dripengine behind a real PgBouncer in transaction pooling mode, with pools small enough that
processes share server connections: each transaction may run on another server connection.

With ``database.pgbouncer = true`` the whole life of a database goes through it (`drip db
upgrade`, an import, a bulk recycle, two `drip run --once` at once, an events ingest, `drip serve`
with two processes, `drip status`), counted exactly from PostgreSQL itself. Without the setting,
psycopg's prepared statements meet another client's server connection and fail: the reason the
setting exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from dripengine.campaigns.experiment import in_holdout
from dripengine.providers.sendgrid.provider import UID_ARG
from dripengine.storage.engine import database_error_reason, make_engine, upgrade
from dripengine.storage.models import EVENT, MESSAGE
from dripengine.testing.sendgrid_webhook import sendgrid_event
from dripengine.testing.serve_process import ServeProcess
from tests import pgbouncer
from tests.conftest import PG_ENV, cloned_database

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get(PG_ENV),
        reason=f"PgBouncer needs a PostgreSQL server behind it: set {PG_ENV} "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)",
    ),
    pytest.mark.skipif(pgbouncer.why_not() is not None, reason=str(pgbouncer.why_not())),
]

IMPORTED = "2026-11-23T10:00:00+00:00"  # Monday
SENDING = "2026-11-24T10:00:00+00:00"  # Tuesday, 11:00 in Berlin: the first step is due, in window
LEADS = 300
ADDRESSES = [f"lead{i:04d}@acme{i % 7}.example" for i in range(LEADS)]
# the shipped lost-SQL campaign holds 10 % of its leads out: they are enrolled and sent nothing
MAILED = sum(not in_holdout(e, "lost-sql-winback", 0.10) for e in ADDRESSES)


@pytest.fixture
def bouncer(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An empty database, and PgBouncer in front of it: (PgBouncer's URL, PostgreSQL's URL)."""
    admin = os.environ[PG_ENV]
    with (
        cloned_database(admin, None, "drip_pgb") as direct,
        pgbouncer.pgbouncer(tmp_path, direct, pool_size=2) as through,
    ):
        yield through, direct


def drip(folder: Path, env: dict[str, str], *args: str, now: str = IMPORTED) -> str:
    """``drip --now NOW ARGS`` as a process; its stdout (a failure shows stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", "--now", now, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"drip {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def start_run(folder: Path, env: dict[str, str], name: str) -> subprocess.Popen[str]:
    log = (folder / f"{name}.log").open("w")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dripengine", "--now", SENDING, "run", "--once"],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        log.close()


def folder_with_files(tmp_path: Path) -> Path:
    """A `drip init` folder (its own SQLite file unused) with a lead list and a lost-deals file."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    subprocess.run(
        [sys.executable, "-m", "dripengine", "init", str(tmp_path / "f")],
        env=clean,
        check=True,
        capture_output=True,
    )
    folder = tmp_path / "f"
    rows = ADDRESSES
    (folder / "many.csv").write_text(
        "email,first_name,company,timezone\n"
        + "".join(f"{e},Lead{i},Company {i % 7},Europe/Berlin\n" for i, e in enumerate(rows)),
        encoding="utf-8",
    )
    (folder / "lost.csv").write_text(
        "email,from_stage,reason\n" + "".join(f"{e},sql,no_budget\n" for e in rows),
        encoding="utf-8",
    )
    return folder


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


@pytest.mark.slow  # a dozen processes, each importing dripengine, through a 2-connection pool
def test_the_whole_life_of_a_database_through_pgbouncer(
    tmp_path: Path, bouncer: tuple[str, str]
) -> None:
    through, direct = bouncer
    folder = folder_with_files(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))},
        "DRIP_DATABASE_URL": through,
        "DRIP_DATABASE_PGBOUNCER": "true",
        "DRIP_DATABASE_POOL_SIZE": "2",
        "DRIP_DATABASE_MAX_OVERFLOW": "2",
        "DRIP_SENDING_BATCH_SIZE": "25",  # many claims, each worker's transactions interleaved
        "DRIP_WEB_METRICS": "open",
    }
    assert "upgraded from empty to" in drip(folder, env, "db", "upgrade")
    assert f"{LEADS} rows" in drip(folder, env, "leads", "import", "many.csv")
    assert "0 refused" in drip(folder, env, "recycle", "--csv", "lost.csv")

    runs = [start_run(folder, env, f"run{n}") for n in (1, 2)]
    codes = [run.wait(timeout=300) for run in runs]
    said = [(folder / f"run{n}.log").read_text() for n in (1, 2)]
    assert codes == [0, 0], said
    sent = [int(line.split(" sent")[0]) for line in said]
    assert sum(sent) == MAILED, said  # both sent: the claims interleaved
    outbox = sorted((folder / "outbox").rglob("*.eml"))
    assert len(outbox) == MAILED

    engine = make_engine(direct)  # counted on PostgreSQL itself, not through PgBouncer
    try:
        assert count(engine, "SELECT count(*) FROM message WHERE status = 'sent'") == MAILED
        assert count(engine, "SELECT count(DISTINCT lead_id) FROM message") == MAILED
        with engine.connect() as connection:
            uids = list(connection.execute(select(MESSAGE.c.uid)).scalars())
        delivered = [
            sendgrid_event("delivered", timestamp=1_795_510_000 + i, **{UID_ARG: uid})
            for i, uid in enumerate(uids)
        ]
        (folder / "events.json").write_text(json.dumps(delivered), encoding="utf-8")
        out = drip(folder, env, "events", "ingest", "events.json", now=SENDING)
        assert out.startswith(f"{MAILED} events read: {MAILED} stored, 0 duplicates"), out
        out = drip(folder, env, "events", "ingest", "events.json", now=SENDING)
        assert out.startswith(f"{MAILED} events read: 0 stored, {MAILED} duplicates"), out
        with engine.connect() as connection:
            matched = select(func.count()).where(EVENT.c.message_id.is_not(None))
            assert connection.execute(matched).scalar_one() == MAILED

        serve_env = {**env, "DRIP_API_TOKEN": "t" * 32}
        with ServeProcess(folder, env=serve_env, args=("--workers", "2")) as serve:  # no --now
            http = urllib3.PoolManager(retries=False, timeout=30)
            status = wait_for_serve(folder, env, alive=2)
            assert (status["serve_alive"], status["workers_alive"]) == (2, 0)  # run --once: no row
            health = http.request("GET", serve.url + "/healthz")
            assert (health.status, health.json()["database"]) == (200, "ok")
            scraped = http.request("GET", serve.url + "/metrics").data.decode()
            assert f"drip_messages_sent_total {MAILED}.0" in scraped
            assert 'drip_processes_alive{kind="serve"} 2.0' in scraped
        status = json.loads(drip(folder, env, "status", "--format", "json", now=SENDING))
        assert (status["serve_alive"], status["serve_stopped"]) == (0, 2)
        assert status["sent_24h"] == MAILED
    finally:
        engine.dispose()


def wait_for_serve(folder: Path, env: dict[str, str], alive: int) -> dict[str, int]:
    """`drip status --format json` once ``alive`` serve processes have said they are up."""
    deadline = time.monotonic() + 60
    while True:
        status: dict[str, int] = json.loads(
            drip(folder, env, "status", "--format", "json", now=SENDING)
        )
        if status["serve_alive"] >= alive or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def prepared_statement_errors(url: str, *, pgbouncer_mode: bool) -> list[str]:
    """Four threads, four pooled connections, 2 server connections: each thread runs the same
    two queries 30 times, a transaction each; the errors they met."""
    engine = make_engine(url, pool_size=4, max_overflow=0, pgbouncer=pgbouncer_mode)
    errors: list[str] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                with engine.begin() as connection:
                    connection.execute(text("SELECT count(*) FROM lead WHERE id > :i"), {"i": i})
                    connection.execute(select(func.count()).select_from(MESSAGE))
        except Exception as exc:  # what the CLI and the web log would say
            errors.append(database_error_reason(exc) or repr(exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return errors


def test_without_the_setting_prepared_statements_break_and_with_it_they_are_not_made(
    tmp_path: Path,
) -> None:
    admin = os.environ[PG_ENV]
    with (
        cloned_database(admin, None, "drip_pgb") as direct,
        pgbouncer.pgbouncer(tmp_path, direct, pool_size=2) as through,
    ):
        engine = make_engine(direct)
        upgrade(engine)
        engine.dispose()
        broken = prepared_statement_errors(through, pgbouncer_mode=False)
        assert broken, "psycopg's prepared statements worked through PgBouncer"
        for error in broken:  # 'prepared statement "_pg3_0" already exists', and the fix
            assert 'prepared statement "_pg3_' in error, broken
            assert error.endswith("set database.pgbouncer = true (DRIP_DATABASE_PGBOUNCER=true))")
        assert prepared_statement_errors(through, pgbouncer_mode=True) == []
