"""Holdout groups, the pure parts: the stable assignment, the `holdout:` field with its file:line
errors, and what a holdout enrollment does when its step falls due (docs/holdout.md)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dripengine.campaigns import dump_campaign, load_campaign_file
from dripengine.campaigns.experiment import bucket, in_holdout
from dripengine.exceptions import CampaignFileErrors
from dripengine.sending.holdout import hold_back
from dripengine.sending.policy import DueLead
from tests.factories import campaign

EMAILS = [f"lead{i}.{i * 7919 % 1000}@company{i % 97}.example" for i in range(20_000)]
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, inside the window


@pytest.mark.parametrize("share", [0.05, 0.1, 0.25, 0.5])
def test_the_share_held_out_is_the_share_asked_for(share: float) -> None:
    held = sum(in_holdout(email, "lost-sql-winback", share) for email in EMAILS)
    # 20,000 draws: the standard error is at most 0.35 points; allow four of them
    assert abs(held / len(EMAILS) - share) < 4 * (share * (1 - share) / len(EMAILS)) ** 0.5


def test_the_group_is_stable_and_ignores_case_and_spaces() -> None:
    first = [in_holdout(e, "lost-sql-winback", 0.1) for e in EMAILS[:2000]]
    again = [in_holdout(e, "lost-sql-winback", 0.1) for e in EMAILS[:2000]]
    assert first == again
    assert bucket(" Jane@Acme.Example ", "c") == bucket("jane@acme.example", "c")
    # fixed forever: sha256("lost-sql-winback\njane@acme.example")[:8] / 2**64. A change here
    # would move live leads between groups: it must never happen silently
    digest = hashlib.sha256(b"lost-sql-winback\njane@acme.example").digest()
    assert bucket("jane@acme.example", "lost-sql-winback") == (
        int.from_bytes(digest[:8], "big") / 2**64
    )


def test_a_larger_share_keeps_everyone_the_smaller_one_held_out() -> None:
    small = {e for e in EMAILS if in_holdout(e, "c", 0.1)}
    large = {e for e in EMAILS if in_holdout(e, "c", 0.2)}
    assert small < large


def test_campaigns_split_their_leads_independently() -> None:
    one = {e for e in EMAILS if in_holdout(e, "lost-sql-winback", 0.1)}
    two = {e for e in EMAILS if in_holdout(e, "rejected-mql-nurture", 0.1)}
    both = len(one & two) / len(EMAILS)
    assert abs(both - 0.01) < 0.004  # independent: 10% of 10%, not 10% (the same leads)


def test_share_zero_or_none_holds_out_nobody() -> None:
    assert not any(in_holdout(e, "c", 0.0) for e in EMAILS[:1000])
    assert campaign("c", 1, ["sql"], []).holdout_share == 0.0


@pytest.mark.parametrize(
    ("written", "share"),
    [("10%", 0.1), ("12.5%", 0.125), (" 50% ", 0.5), (0.1, 0.1), (0, 0.0), ("0%", 0.0)],
)
def test_holdout_takes_a_percentage_or_a_fraction(written: object, share: float) -> None:
    assert campaign("c", 1, ["sql"], [], holdout=written).holdout_share == pytest.approx(share)


def test_a_campaign_dumped_and_read_again_keeps_its_holdout() -> None:
    dumped = dump_campaign(campaign("c", 1, ["sql"], [], holdout="10%"))
    assert dumped["holdout"] == "10%"
    assert campaign("c", 1, ["sql"], [], holdout=dumped["holdout"]).holdout_share == 0.1
    assert "holdout" not in dump_campaign(campaign("c", 1, ["sql"], []))


CAMPAIGN = """\
id: demo
name: Demo
audience:
  stages: [sql]
send:
  from: "Acme <hello@acme.example>"
tracks:
  cold:
    min_score: 0
    steps:
      - id: checkin
        wait: 1d
        template: x/checkin.mjml
        subject: Hello
holdout: {value}
"""


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("60%", '"60%" would send nothing to more leads than it mails; at most 50%'),
        ("-5%", '"-5%" is negative; write a share from 0% to 50%, e.g. holdout: 10%'),
        ("10", "10 is not a share (a number is a fraction: 0.1 = 10%)"),
        ("0.75", "0.75 would send nothing to more leads than it mails"),
        ("ten percent", '"ten percent" is not a share; write a share from 0% to 50%'),
        ("[10%]", "is not a share; write a share from 0% to 50%"),
    ],
)
def test_a_wrong_holdout_is_refused_at_its_line_with_the_fix(
    tmp_path: Path, value: str, says: str
) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(CAMPAIGN.format(value=value))
    with pytest.raises(CampaignFileErrors) as caught:
        load_campaign_file(path)
    (line,) = caught.value.errors
    assert line.startswith(f"{tmp_path.name}/demo.yaml:15: holdout: "), line
    assert says in line


# --- a holdout enrollment at its due time ------------------------------------------------------

WINBACK = campaign("lost-sql-winback", 1, ["sql"], [], holdout="10%", exit={"after_days": 30})
LEAD = DueLead(email="jane@acme.example", score=0.0, timezone=BERLIN)


def test_the_due_step_is_held_back_and_the_next_one_due_on_the_treated_schedule() -> None:
    decision = hold_back(WINBACK, "cold", "checkin", LEAD, entered_at=MONDAY, now=MONDAY)
    assert decision.kind == "wait"
    assert decision.step is not None and decision.step.id == "guide"
    assert decision.track == "cold"
    # guide waits 3 days from checkin: Thursday, inside the Mon-Thu 9-17 Berlin window
    assert decision.until is not None
    assert MONDAY + timedelta(days=3) <= decision.until < MONDAY + timedelta(days=3, hours=8)


def test_after_the_last_step_the_holdout_enrollment_completes() -> None:
    decision = hold_back(WINBACK, "cold", "guide", LEAD, entered_at=MONDAY, now=MONDAY)
    assert decision.kind == "complete"


def test_suppression_and_the_time_limit_still_end_a_holdout_enrollment() -> None:
    suppressed = DueLead("jane@acme.example", 0.0, BERLIN, suppressed="unsubscribed on 1 Nov")
    assert hold_back(
        WINBACK, "cold", "checkin", suppressed, entered_at=MONDAY, now=MONDAY
    ).kind == ("exit")
    late = MONDAY + timedelta(days=31)
    decision = hold_back(WINBACK, "cold", "checkin", LEAD, entered_at=MONDAY, now=late)
    assert (decision.kind, decision.reason) == ("exit", "campaign time limit (30 days)")
