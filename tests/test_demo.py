"""`drip demo`: the whole loop end to end in a fresh folder, as the README's first command runs it;
run again in the same folder; the links it prints served."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import urllib3
from sqlalchemy import create_engine, text

from dripengine.campaigns import load_campaign_file
from dripengine.campaigns.schedule import next_due
from dripengine.campaigns.window import in_window
from dripengine.demo.folder import MARKER, prepare_folder
from dripengine.demo.timeline import first_send_time
from tests.conftest import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # `drip demo` end to end in subprocesses

LINK = re.compile(r"^ {5}(?P<label>[^:]+): (?P<url>http://127\.0\.0\.1:\d+/\S+)$", re.M)
HTTP = urllib3.PoolManager(retries=False, timeout=10.0)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _get(url: str, token: str) -> urllib3.BaseHTTPResponse:
    headers = urllib3.make_headers(basic_auth=f"sales:{token}") if url.endswith("/report") else {}
    return HTTP.request("GET", url, headers=headers)


def _check_links(out: str, folder: Path) -> None:
    """Every link the demo printed answers: Bob's page says he is out, the report opens."""
    token = tomllib.loads((folder / "drip.toml").read_text())["web"]["api_token"]
    links = {m["label"]: m["url"] for m in LINK.finditer(out)}
    assert len(links) == 3, out[-2000:]
    for label, url in links.items():
        answer = _get(url, token)
        assert answer.status == 200, (label, url, answer.status)
        if label.startswith("Bob's"):
            assert "You are unsubscribed" in answer.data.decode()


@contextmanager
def _serving(command: str) -> Iterator[None]:
    """The command the demo printed, run as a user would paste it."""
    process = subprocess.Popen(
        ["bash", "-c", command.replace("&& drip serve", "&& exec drip serve")],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = None
    try:
        folder = Path(command.split("cd ", 1)[1].split(" &&", 1)[0])
        port = tomllib.loads((folder / "drip.toml").read_text())["web"]["port"]

        def healthy() -> bool:
            assert process.poll() is None, f"`{command}` exited {process.returncode}"
            try:
                return HTTP.request("GET", f"http://127.0.0.1:{port}/healthz").status == 200
            except urllib3.exceptions.HTTPError:
                return False

        wait_for(healthy, timeout=60, what=f"`{command}` to answer /healthz on port {port}")
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_demo_runs_the_whole_loop_twice_in_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", "demo", str(folder)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,  # no terminal: the demo ends instead of serving on
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _check_loop(done.stdout, folder)
    # no terminal: the server has stopped, and the demo says how to bring its links back
    command = re.search(r"These links work again once you run: (.+)$", done.stdout, re.M)
    assert command, done.stdout[-2000:]
    assert command[1] == f"cd {folder} && drip serve"
    with _serving(command[1]):
        _check_links(done.stdout, folder)

    # again, in the same folder, serving its links at the end until Ctrl-C
    again = subprocess.Popen(
        [sys.executable, "-m", "dripengine", "demo", "--keep-serving", str(folder)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert again.stdout is not None
        out = ""
        for line in again.stdout:
            out += line
            if "(later, to serve them again:" in line:
                break
        assert out.startswith(f"Starting over: {folder} holds an earlier drip demo"), out[:500]
        _check_links(out, folder)  # live: the demo is still serving them
        again.send_signal(signal.SIGINT)
        rest, _ = again.communicate(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0, out[-2000:] + rest
    assert "Stopped serving." in rest
    _check_loop(out, folder)  # a fresh loop: one hand-back, not two


def _check_loop(out: str, folder: Path) -> None:
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
        handoffs = db.execute(
            text(
                "SELECT count(*) FROM handoff JOIN lead ON lead.id = handoff.lead_id "
                "WHERE lead.email = 'jane@acme.example'"
            )
        ).scalar()
        # the cohort: the holdout got nothing, the A/B test settled on human clicks only
        held_out, held_out_mail = db.execute(
            text(
                "SELECT count(DISTINCT enrollment.id), count(message.id) FROM enrollment "
                "LEFT JOIN message ON message.enrollment_id = enrollment.id "
                "WHERE enrollment.holdout AND enrollment.campaign_id = 'lost-sql-winback'"
            )
        ).one()
        winner = db.execute(text("SELECT step_id, variant, metric FROM variant_winner")).all()
        scanner_clicks = db.execute(
            text("SELECT count(*) FROM event WHERE type = 'click' AND machine")
        ).scalar()
        touches = db.execute(text("SELECT kind, actor FROM sales_touch")).all()
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
    assert 80 <= held_out <= 150 and held_out_mail == 0  # ~10 % of 1,200, sent nothing
    assert winner == [("checkin", "smaller-start", "human_click_rate")]
    assert "from now on the step sends only smaller-start" in out
    assert scanner_clicks > 100  # the scanner's clicks were stored, as machine clicks
    assert "came back because of the emails" in out  # the lift, significant at 95 %
    assert "holdout" in (folder / "report.html").read_text().lower()
    assert touches == [("call", "Sam Reyes")]
    assert "first_touch" in out


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
    assert "is not empty and no drip demo made it" in done.stderr
    assert "name another: drip demo DIR, or empty this one" in done.stderr
    assert (tmp_path / "demo" / "notes.txt").read_text() == "mine"


def test_the_first_send_falls_inside_every_window_all_year() -> None:
    """The demo's leads get their first email whichever day and hour it is run, in winter and in
    summer time, and in the weeks when only one side of the Atlantic has changed its clocks."""
    leads = {
        "lost-sql-winback": {
            "jane@acme.example": "Europe/Berlin",
            "bob.miller@northwind.example": "America/New_York",
            "lukas.huber@alpenwerk.example": "Europe/Vienna",
        },
        "rejected-mql-nurture": {
            "priya.nair@bluepeak.example": "Europe/London",
            "amelie.laurent@lumiere.example": "Europe/Paris",
        },
    }
    weeks = [datetime(2027, m, d, tzinfo=UTC) for m, d in ((1, 4), (3, 15), (7, 5), (10, 25))]
    for name, people in leads.items():
        campaign = load_campaign_file(REPO / "campaigns" / f"{name}.yaml")
        wait, window = campaign.tracks["cold"].steps[0].wait, campaign.send.window
        for week in weeks:
            for hour in range(0, 24 * 7):
                started = week + timedelta(hours=hour, minutes=37)
                sent_at = first_send_time(started)
                for email, zone in people.items():
                    tz = ZoneInfo(zone)
                    due = next_due(started + wait, window, tz, email)
                    assert in_window(sent_at, window, tz), (email, started, sent_at)
                    assert due <= sent_at, (email, started, due, sent_at)


def test_starting_over_empties_only_the_demo_folder(tmp_path: Path) -> None:
    """A link inside the demo folder is removed, never what it points at."""
    outside = tmp_path / "mine"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    folder = tmp_path / "demo"
    assert prepare_folder(folder) is False  # new: nothing to start over
    (folder / "outbox").mkdir()
    (folder / "outbox" / "old.eml").write_text("x")
    (folder / "drip.db").write_text("x")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    assert prepare_folder(folder) is True
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]
    assert (outside / "keep.txt").read_text() == "mine"
