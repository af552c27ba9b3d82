"""`drip run` as a user runs it: a process that sends on its clock and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dripengine.cli import main
from tests.clirun import drip
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # `drip run` as a subprocess


def test_daemon_sends_due_mail_and_stops_cleanly_on_sigterm(folder: Path, db_url: str) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    assert drip("recycle", "--csv", "lost-deals.csv")[0] == 0
    env = {**os.environ, "DRIP_SENDING_TICK_SECONDS": "0.2"}
    if not db_url.startswith("sqlite"):
        env["DRIP_DATABASE_URL"] = db_url
    process = subprocess.Popen(
        [sys.executable, "-m", "dripengine", "--now", "2026-11-26T10:00:00+00:00", "run"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: next((folder / "outbox").rglob("*.eml"), None),
            timeout=30,
            what="the daemon to send (an .eml in the outbox)",
        )
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{folder / 'drip.db'}"
    engine = create_engine(url)
    with engine.connect() as connection:
        worker = connection.execute(text("SELECT sent, stopped_at FROM worker")).one()
        sending = connection.execute(
            text("SELECT count(*) FROM message WHERE status = 'sending'")
        ).scalar()
    engine.dispose()
    assert worker.stopped_at is not None and worker.sent >= 1
    assert sending == 0  # the batch in flight was finished and recorded
    assert main is not None
