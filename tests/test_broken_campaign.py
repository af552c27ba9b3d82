"""One broken campaign file stops nothing but its own campaign (issue 15, item 5).

`drip run` and `drip recycle` keep running every valid campaign; the broken one is paused (its
enrollments stay due, none is ended as "campaign no longer exists") and said loudly; the daemon
re-reads campaign and template changes without a restart, and a file that breaks while it runs
leaves the campaign on its last good version.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dripengine.cli import main
from tests.clirun import drip
from tests.waiting import wait_for

LATER = "2026-11-26T10:00:00+00:00"  # Thursday: the first steps of both campaigns are due
LOST_SQL = "campaigns/lost-sql-winback.yaml"


def run_once(now: str = LATER) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--now", now, "run", "--once"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def enrolled(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    assert drip("recycle", "--csv", "lost-deals.csv")[0] == 0


def sent_by_campaign(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT e.campaign_id, count(*) FROM message m JOIN enrollment e "
                "ON m.enrollment_id = e.id WHERE m.status = 'sent' GROUP BY e.campaign_id"
            )
        )
        return {campaign: int(n) for campaign, n in rows}


def enrollments(engine: Engine, campaign: str) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        return [
            (row.status, row.exit_reason)
            for row in connection.execute(
                text("SELECT status, exit_reason FROM enrollment WHERE campaign_id = :c"),
                {"c": campaign},
            )
        ]


def break_schema(folder: Path) -> str:
    path = folder / LOST_SQL
    good = path.read_text()
    path.write_text(good.replace("wait: 1d", 'wait: "1 dayz"', 1))
    return good


def test_run_sends_the_valid_campaign_and_holds_the_broken_one_until_fixed(
    folder: Path, folder_engine: Engine
) -> None:
    enrolled(folder)
    good = break_schema(folder)
    code, _, err = run_once()
    assert code == 0, err
    assert f"warning: {LOST_SQL} is broken ({LOST_SQL}:" in err
    assert 'campaign "lost-sql-winback" is paused' in err
    assert "`drip campaigns validate` lists them" in err
    sent = sent_by_campaign(folder_engine)
    assert sent.get("rejected-mql-nurture", 0) >= 1 and "lost-sql-winback" not in sent
    held = enrollments(folder_engine, "lost-sql-winback")
    assert held and all(status == "active" and reason is None for status, reason in held)

    (folder / LOST_SQL).write_text(good)  # fixed: its leads go out on the next run
    code, _, err = run_once()
    assert code == 0 and "warning" not in err
    assert sent_by_campaign(folder_engine).get("lost-sql-winback", 0) >= 1


def test_a_file_that_names_no_id_holds_every_campaign_not_loaded(
    folder: Path, folder_engine: Engine
) -> None:
    enrolled(folder)
    (folder / LOST_SQL).write_text("id: [lost-sql-winback\nname: oops\n")  # YAML syntax error
    code, _, err = run_once()
    assert code == 0, err
    assert "names no campaign id: every campaign not loaded is paused" in err
    assert "lost-sql-winback" not in sent_by_campaign(folder_engine)
    held = enrollments(folder_engine, "lost-sql-winback")
    assert held and all(status == "active" and reason is None for status, reason in held)


def test_a_broken_template_pauses_its_campaign_with_the_file_and_line(
    folder: Path, folder_engine: Engine
) -> None:
    enrolled(folder)
    template = folder / "templates/lost-sql/checkin.mjml"
    template.write_text(template.read_text().replace("<mj-text>", "<mj-txt>", 1))
    code, _, err = run_once()
    assert code == 0, err
    assert 'campaign "lost-sql-winback" is paused: its templates have' in err
    assert "templates/lost-sql/checkin.mjml:" in err and "unknown tag <mj-txt>" in err
    sent = sent_by_campaign(folder_engine)
    assert "lost-sql-winback" not in sent and sent.get("rejected-mql-nurture", 0) >= 1


def test_recycle_routes_among_the_valid_campaigns_and_says_which_is_paused(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    break_schema(folder)
    code, out, err = drip(
        "recycle", "amelie.laurent@lumiere.example", "--from", "mql", "--reason", "bad_timing"
    )
    assert code == 0, err
    assert 'into "Rejected MQL nurture"' in out
    assert 'campaign "lost-sql-winback" is paused' in err


def test_with_no_valid_campaign_recycle_refuses(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    for path in (folder / "campaigns").glob("*.yaml"):
        path.write_text("id: [\n")
    code, _, err = drip("recycle", "jane@acme.example", "--from", "sql", "--reason", "no_budget")
    assert code == 1 and "no campaign file is valid" in err


@pytest.mark.slow  # `drip run` as a subprocess
def test_the_daemon_rereads_campaign_files_without_a_restart(
    folder: Path, db_url: str, folder_engine: Engine
) -> None:
    enrolled(folder)
    good = break_schema(folder)
    env = {**os.environ, "DRIP_SENDING_TICK_SECONDS": "0.2"}
    if not db_url.startswith("sqlite"):
        env["DRIP_DATABASE_URL"] = db_url
    log = folder / "run.log"  # a file, not a pipe: read while the daemon runs
    with log.open("wb") as handle:  # the child keeps its own handle
        process = subprocess.Popen(
            [sys.executable, "-m", "dripengine", "--now", LATER, "run"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    try:
        wait_for(
            lambda: sent_by_campaign(folder_engine).get("rejected-mql-nurture", 0) >= 1,
            what="a send of the valid campaign rejected-mql-nurture",
        )
        time.sleep(
            0.5
        )  # the point: a few more ticks (0.2 s each) in which the broken one stays paused
        assert "lost-sql-winback" not in sent_by_campaign(folder_engine)
        (folder / LOST_SQL).write_text(good)
        wait_for(
            lambda: sent_by_campaign(folder_engine).get("lost-sql-winback", 0) >= 1,
            what="the fixed campaign lost-sql-winback to be picked up and send",
        )
        # broken again while running: the last good version keeps going, said in the log
        break_schema(folder)
        wait_for(
            lambda: (
                'campaign "lost-sql-winback" is still sending the version loaded' in log.read_text()
            ),
            what="the daemon to say it keeps the last good version of lost-sql-winback",
        )
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    err = log.read_text()
    assert process.returncode == 0, err
    assert "campaign files re-read: running lost-sql-winback, rejected-mql-nurture" in err
    assert 'campaign "lost-sql-winback" is still sending the version loaded' in err


def test_status_says_the_broken_campaign_is_held_not_ended(folder: Path) -> None:
    enrolled(folder)
    break_schema(folder)
    code, out, err = drip("--now", LATER, "status", "--format", "json")
    assert code == 0, err
    states = {c["campaign_id"]: c for c in json.loads(out)["campaigns"]}
    held = states["lost-sql-winback"]
    assert held["state"] == "file_broken" and held["sendable_now"] == 0
    assert f"{LOST_SQL} is broken" in held["reason"] and "none is ended" in held["reason"]
    assert states["rejected-mql-nurture"]["state"] != "file_broken"
