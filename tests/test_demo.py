"""`drip demo`: the whole loop end to end in a fresh folder, as the README's first command runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", "demo", str(folder)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for line in (
        "Jane clicks",
        "one-click unsubscribe (RFC 8058): 200",
        "signed bounce event: 200",
        "(SendGrid Inbound Parse posts it): 200",
        "bob.miller@northwind.example: not mailed again",
        "lukas.huber@alpenwerk.example: not mailed again",
    ):
        assert line in out, out
    engine = create_engine(f"sqlite:///{folder / 'drip.db'}")
    with engine.connect() as db:
        stage = db.execute(text("SELECT stage FROM lead WHERE email='jane@acme.example'")).scalar()
        handoffs = db.execute(text("SELECT count(*) FROM handoff")).scalar()
        suppressed = dict(db.execute(text("SELECT email, reason FROM suppression")).all())
        gone_mail = db.execute(
            text(
                "SELECT count(*) FROM message JOIN lead ON lead.id = message.lead_id "
                "WHERE lead.email IN ('bob.miller@northwind.example', 'lukas.huber@alpenwerk.example')"
            )
        ).scalar()
    engine.dispose()
    assert stage == "mql"
    assert handoffs == 1
    assert suppressed == {
        "bob.miller@northwind.example": "unsubscribe",
        "lukas.huber@alpenwerk.example": "hard_bounce",
    }
    assert gone_mail == 2  # their first email, and nothing after the opt-out / the bounce
    assert len(list((folder / "outbox").glob("**/*.eml"))) >= 5
    assert "<canvas" in (folder / "report.html").read_text()


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "notes.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "is not empty" in done.stderr
    assert (tmp_path / "demo" / "notes.txt").read_text() == "mine"
