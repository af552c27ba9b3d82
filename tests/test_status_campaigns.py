"""`drip status` per campaign: active enrolments, the next due time, and why nothing goes out now.

The sample lost deals are recycled at Monday 23 November 2026, 10:00 UTC (11:00 in Berlin): three
go to lost-sql-winback (first step after 1 day, window Mon-Thu 09:00-17:00 Europe/Berlin), two to
rejected-mql-nurture (first step after 2 days, window Mon-Fri), one matches no campaign.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from dripengine.cli import main
from dripengine.storage.pauses import pause
from tests.clirun import NOW, drip

TUESDAY_NOON = "2026-11-24T12:00:00+00:00"  # 13:00 in Berlin: lost-sql-winback is due
SATURDAY = "2026-11-28T12:00:00+00:00"  # both campaigns are due, both windows closed
BREAKER = "complaint rate 0.40% (2 of 500 sent) is over 0.10%"


def status_at(now: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--now", now, "status", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def by_campaign(now: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    data = json.loads(status_at(now, "--format", "json"))
    return {c["campaign_id"]: c for c in data["campaigns"]}, data["hints"]


def hint_lines(text: str) -> list[str]:
    return [line.removeprefix("hint: ") for line in text.splitlines() if line.startswith("hint:")]


@pytest.fixture
def recycled(folder: Path) -> Path:
    code, _, err = drip("recycle", "--csv", "lost-deals.csv", "--create")
    assert code == 0, err
    return folder


def test_just_after_recycling_every_enrolment_waits_for_its_first_step(recycled: Path) -> None:
    text = status_at(NOW)
    assert (
        "  lost-sql-winback: every active enrolment (3) waits for its next step; "
        "the next is due Tue 2026-11-24 11:00 CET (in 1 d)"
    ) in text
    assert (
        "  rejected-mql-nurture: every active enrolment (2) waits for its next step; "
        "the next is due Wed 2026-11-25 11:00 CET (in 2 d)"
    ) in text
    assert hint_lines(text) == [
        "nothing goes out now: the next email (lost-sql-winback) goes out Tue 2026-11-24 "
        "11:00 CET (in 1 d); keep `drip run` running (or run `drip run --once` then)"
    ]
    campaigns, _ = by_campaign(NOW)
    lost = campaigns["lost-sql-winback"]
    assert (lost["active"], lost["due_now"], lost["state"]) == (3, 0, "waiting")
    assert lost["next_due_at"] == "2026-11-24T10:00:00+00:00"
    assert (lost["next_due_local"], lost["next_due_in"]) == ("Tue 2026-11-24 11:00 CET", "in 1 d")
    assert json.loads(status_at(NOW, "--format", "json"))["active"] == 5


def test_a_closed_send_window_says_when_it_opens(recycled: Path) -> None:
    text = status_at(SATURDAY)
    assert (
        "  lost-sql-winback: 3 due, but the send window (mon, tue, wed, thu 09:00-17:00 "
        "Europe/Berlin) is closed now; it opens Mon 2026-11-30 09:00 CET (in 1 d 20 h)"
    ) in text
    assert (
        "  rejected-mql-nurture: 2 due, but the send window (mon, tue, wed, thu, fri "
        "09:00-17:00 Europe/Berlin) is closed now; it opens Mon 2026-11-30 09:00 CET"
    ) in text
    # five are due, but none can go out on a Saturday: no "start drip run" hint
    assert hint_lines(text) == [
        "nothing goes out now: the next email (lost-sql-winback) goes out Mon 2026-11-30 "
        "09:00 CET (in 1 d 20 h); keep `drip run` running (or run `drip run --once` then)"
    ]
    campaigns, _ = by_campaign(SATURDAY)
    assert {c: (v["state"], v["due_now"], v["sendable_now"]) for c, v in campaigns.items()} == {
        "rejected-mql-nurture": ("window_closed", 2, 0),
        "lost-sql-winback": ("window_closed", 3, 0),
    }
    assert campaigns["lost-sql-winback"]["window_open"] is False
    assert campaigns["lost-sql-winback"]["window_opens_at"] == "2026-11-30T08:00:00+00:00"


def test_a_campaign_paused_by_the_breaker_says_since_when_why_and_how_to_resume(
    recycled: Path, folder_engine: Engine
) -> None:
    with folder_engine.begin() as connection:
        pause(connection, "lost-sql-winback", BREAKER, datetime.fromisoformat(NOW))
    text = status_at(TUESDAY_NOON)
    assert (
        "  lost-sql-winback: paused by the complaint breaker since Mon 2026-11-23 11:00 CET "
        f"(1 d 2 h ago): {BREAKER}; nothing goes out until "
        "`drip campaigns resume lost-sql-winback`"
    ) in text
    hints = hint_lines(text)
    assert not any("no worker alive" in hint for hint in hints), hints  # 3 due, but paused
    assert hints == [
        "lost-sql-winback is paused by the complaint breaker with 3 active enrolment(s): "
        "clean the list, then `drip campaigns resume lost-sql-winback`",
        "nothing goes out now: the next email (rejected-mql-nurture) goes out Wed 2026-11-25 "
        "11:00 CET (in 22 h); keep `drip run` running (or run `drip run --once` then)",
    ]
    campaigns, _ = by_campaign(TUESDAY_NOON)
    lost = campaigns["lost-sql-winback"]
    assert (lost["state"], lost["due_now"], lost["sendable_now"]) == ("paused", 3, 0)
    assert (lost["paused_since"], lost["paused_reason"]) == (NOW, BREAKER)


def test_due_inside_the_window_is_sent_by_the_next_run(recycled: Path) -> None:
    text = status_at(TUESDAY_NOON)
    assert "  lost-sql-winback: 3 due now: the next `drip run` sends them" in text
    assert "  rejected-mql-nurture: every active enrolment (2) waits" in text
    assert hint_lines(text) == [
        "3 due now and no worker alive: start `drip run` (or `drip run --once`)"
    ]
    sent = CliRunner().invoke(main, ["--now", TUESDAY_NOON, "run", "--once"])
    assert sent.exit_code == 0 and sent.stdout.startswith("3 sent"), sent.output
    campaigns, hints = by_campaign(TUESDAY_NOON)
    assert campaigns["lost-sql-winback"]["state"] == "waiting"  # the next step waits 10 days
    assert campaigns["lost-sql-winback"]["next_due_in"].startswith("in 1")
    assert hints[0].startswith("nothing goes out now: the next email (rejected-mql-nurture)")


def test_no_active_enrolments_is_a_reason_and_the_hint_says_start_here(folder: Path) -> None:
    text = status_at(NOW)
    assert "  lost-sql-winback: no active enrolments: `drip recycle` leads that match" in text
    assert "  rejected-mql-nurture: no active enrolments" in text
    assert hint_lines(text)[0].startswith("nothing yet: import leads")
    campaigns, _ = by_campaign(NOW)
    assert {c["state"] for c in campaigns.values()} == {"no_active"}


def test_csv_is_one_row_per_campaign(recycled: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(status_at(SATURDAY, "--format", "csv"))))
    assert [(r["campaign_id"], r["active"], r["due_now"], r["state"]) for r in rows] == [
        ("rejected-mql-nurture", "2", "2", "window_closed"),
        ("lost-sql-winback", "3", "3", "window_closed"),
    ]
    assert rows[1]["window_opens_at"] == "2026-11-30T08:00:00+00:00"


def test_format_offers_text_json_csv(recycled: Path) -> None:
    assert status_at(NOW, "--format", "text") == status_at(NOW)
    assert status_at(NOW, "--format", "table") == status_at(NOW)  # the name it had before
    result = CliRunner().invoke(main, ["--now", NOW, "status", "--format", "txt"])
    assert result.exit_code == 2 and "did you mean" in result.stderr and "text" in result.stderr


def test_recycled_leads_due_after_the_weekend_are_not_nothing_yet(folder: Path) -> None:
    """The report of issue 15: recycled on a Thursday, every first step falls after 24 h, and
    `drip status` said "nothing yet: import leads … recycle them" about leads just recycled."""
    thursday = "2026-11-26T10:00:00+00:00"
    result = CliRunner().invoke(
        main, ["--now", thursday, "recycle", "--csv", "lost-deals.csv", "--create"]
    )
    assert result.exit_code == 0, result.output
    text = status_at(thursday)
    assert not any(hint.startswith("nothing yet") for hint in hint_lines(text)), text
    assert "active            5" in text
    campaigns, hints = by_campaign(thursday)
    assert {c: (v["active"], v["state"]) for c, v in campaigns.items()} == {
        "rejected-mql-nurture": (2, "waiting"),
        "lost-sql-winback": (3, "waiting"),
    }
    assert campaigns["lost-sql-winback"]["next_due_local"].startswith("Mon 2026-11-30 09:")
    assert hints[0].startswith("nothing goes out now: the next email (")
