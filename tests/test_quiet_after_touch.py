"""A sales touch holds a lead's marketing email for ``sending.quiet_after_sales_touch`` (then it goes
out), and the weekly cap counts reps' emails: the policy alone, then ``drip run --once`` with the
outbox provider travelling in time (``--now``) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.campaigns.sequence import Progress
from dripengine.cli import main
from dripengine.config import load_settings
from dripengine.exceptions import ConfigError
from dripengine.sending.policy import DueLead, decide
from dripengine.storage.models import ENROLLMENT, LEAD
from tests.test_send_policy import BERLIN, CAMPAIGN, START, TUESDAY_10

QUIET = timedelta(hours=48)


def _decide(
    lead: DueLead,
    *,
    now: datetime = TUESDAY_10,
    sales: list[datetime] | None = None,
    cap: int = 3,
    quiet: timedelta = QUIET,
):  # type: ignore[no-untyped-def]
    return decide(
        CAMPAIGN,
        lead,
        Progress(last_at=START),
        entered_at=START,
        recent_sends=[],
        cap=cap,
        now=now,
        sales_emails=sales or [],
        quiet=quiet,
    )


def test_a_touch_holds_the_due_step_until_the_quiet_period_ends() -> None:
    touched = TUESDAY_10 - timedelta(minutes=30)  # Tuesday 09:30 in Berlin
    lead = DueLead("jane@acme.example", 0, BERLIN, last_touch=("call", touched))
    decision = _decide(lead)
    assert decision.kind == "wait" and decision.step is not None and decision.step.id == "a"
    assert decision.until == touched + QUIET  # Thursday 09:30 in Berlin: inside the window
    assert decision.reason == (
        "held after a sales call (2026-11-24 08:30 UTC) until 2026-11-26 08:30 UTC"
    )
    # once it has passed the step goes out; with the setting off it never waited
    assert _decide(lead, now=touched + QUIET).kind == "send"
    assert _decide(lead, quiet=timedelta(0)).kind == "send"
    # a touch long ago holds nothing
    old = DueLead("jane@acme.example", 0, BERLIN, last_touch=("meeting", touched - QUIET))
    assert _decide(old).kind == "send"


def test_the_hold_ends_inside_the_send_window_and_exits_still_happen() -> None:
    friday = datetime(2026, 11, 27, 10, tzinfo=UTC)  # + 48 h = Sunday: the window is closed
    lead = DueLead("jane@acme.example", 0, BERLIN, last_touch=("email", friday))
    decision = _decide(lead, now=friday + timedelta(hours=1))
    assert decision.kind == "wait" and decision.until is not None
    assert decision.until >= friday + QUIET
    assert decision.until.astimezone(BERLIN).weekday() < 5  # a weekday, in business hours
    unsubscribed = DueLead(
        "jane@acme.example", 0, BERLIN, suppressed="unsubscribe", last_touch=("call", friday)
    )
    assert _decide(unsubscribed, now=friday).kind == "exit"


def test_the_weekly_cap_counts_a_reps_emails() -> None:
    lead = DueLead("jane@acme.example", 0, BERLIN)
    sales = [TUESDAY_10 - timedelta(days=5), TUESDAY_10 - timedelta(days=1)]
    capped = _decide(lead, sales=sales, cap=2, quiet=timedelta(0))
    assert capped.kind == "wait"
    assert capped.reason == "frequency cap: 2 emails in 7 days (max 2), 2 of them from sales"
    assert capped.until is not None and capped.until >= sales[0] + timedelta(days=7)
    assert _decide(lead, sales=sales, cap=3, quiet=timedelta(0)).kind == "send"
    # a rep's email older than the 7 days does not count
    assert _decide(lead, sales=[TUESDAY_10 - timedelta(days=8)] * 3, cap=2).kind == "send"


# --- drip run --once, travelling in time --------------------------------------------------------

MONDAY = "2026-11-23T10:00:00+00:00"  # jane and bob are recycled: checkin is due a day later
TOUCH = "2026-11-24T08:00:00+00:00"  # Tuesday 09:00 in Berlin: a rep calls jane
TUESDAY_NOON = "2026-11-24T12:00:00+00:00"  # checkin is due for both
HOLD_ENDS = datetime(2026, 11, 26, 8, tzinfo=UTC)  # TOUCH + 48 h: Thursday 09:00 in Berlin


def drip_at(now: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--now", now, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def sent(now: str) -> int:
    code, out, err = drip_at(now, "run", "--once")
    assert code == 0, err
    return int(out.split(" sent", 1)[0])


def recycle(*emails: str) -> None:
    for email in emails:
        code, _, err = drip_at(
            MONDAY, "recycle", email, "--from", "sql", "--reason", "no_budget", "--create"
        )
        assert code == 0, err


def next_due(engine: Engine, email: str) -> datetime:
    query = (
        select(ENROLLMENT.c.next_due_at)
        .join(LEAD, LEAD.c.id == ENROLLMENT.c.lead_id)
        .where(LEAD.c.email == email)
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def held(now: str) -> int:
    code, out, err = drip_at(now, "status", "--format", "json")
    assert code == 0, err
    return int(json.loads(out)["held_for_sales_touch"])


def test_a_call_holds_the_due_email_48h_then_it_goes_out(
    folder: Path, folder_engine: Engine
) -> None:
    recycle("jane@acme.example", "bob@acme.example")
    code, out, err = drip_at(
        TOUCH, "touches", "add", "jane@acme.example", "--kind", "call", "--rep", "sam"
    )
    assert code == 0, err
    assert out == (
        "jane@acme.example: call at 2026-11-24 08:00 UTC recorded; marketing email held until "
        "2026-11-26 08:00 UTC\n"
    )
    assert held(TUESDAY_NOON) == 1
    assert sent(TUESDAY_NOON) == 1  # bob's; jane's waits, neither skipped nor lost
    assert len(list((folder / "outbox").rglob("*.eml"))) == 1
    assert next_due(folder_engine, "jane@acme.example") == HOLD_ENDS
    code, out, _ = drip_at(TUESDAY_NOON, "leads", "show", "jane@acme.example", "--format", "json")
    touches = json.loads(out)["sales_touches"]
    assert [(t["kind"], t["actor"], t["source"], t["at"]) for t in touches] == [
        ("call", "sam", "cli", "2026-11-24T08:00:00+00:00")
    ]
    assert sent((HOLD_ENDS - timedelta(minutes=1)).isoformat()) == 0
    assert held(HOLD_ENDS.isoformat()) == 0
    assert sent((HOLD_ENDS + timedelta(hours=1)).isoformat()) == 1  # jane's checkin, after all
    assert len(list((folder / "outbox").rglob("*.eml"))) == 2


def test_with_the_quiet_period_off_a_touch_holds_nothing(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIP_SENDING_QUIET_AFTER_SALES_TOUCH", "off")
    recycle("jane@acme.example")
    assert drip_at(TOUCH, "touches", "add", "jane@acme.example", "--kind", "meeting")[0] == 0
    assert held(TUESDAY_NOON) == 0
    assert sent(TUESDAY_NOON) == 1


def test_the_weekly_cap_counts_sales_emails_not_calls(
    folder: Path, folder_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIP_SENDING_QUIET_AFTER_SALES_TOUCH", "0")  # the cap alone
    monkeypatch.setenv("DRIP_SENDING_MAX_PER_LEAD_PER_WEEK", "2")
    recycle("jane@acme.example", "bob@acme.example")
    (folder / "touches.csv").write_text(
        "email,kind,at,rep\n"
        "jane@acme.example,email,2026-11-20T10:00:00Z,sam\n"
        "jane@acme.example,email,2026-11-23T11:00:00+01:00,sam\n"
        "bob@acme.example,call,2026-11-20T10:00:00Z,sam\n"
        "bob@acme.example,call,2026-11-23T11:00:00+01:00,sam\n"
    )
    code, out, err = drip_at(TOUCH, "touches", "import", "touches.csv")
    assert (code, err) == (0, "")
    assert out.startswith("4 rows in ") and out.endswith(
        ": 4 recorded, 0 duplicates (already recorded), 0 refused\n"
    )
    assert sent(TUESDAY_NOON) == 1  # bob's: calls do not count toward the cap
    # jane got two emails from sales in 7 days: hers waits until the first leaves the week
    assert next_due(folder_engine, "jane@acme.example") >= datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert len(list((folder / "outbox").rglob("*.eml"))) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("48h", timedelta(hours=48)),
        ("2d", timedelta(days=2)),
        ("90m", timedelta(minutes=90)),
        ("1w", timedelta(weeks=1)),
        ("0", timedelta(0)),
        ("off", timedelta(0)),
    ],
)
def test_the_setting_reads_a_duration_or_off(value: str, expected: timedelta) -> None:
    env = {"DRIP_SENDING_QUIET_AFTER_SALES_TOUCH": value}
    assert load_settings(env=env).sending.quiet_after_sales_touch == expected


def test_a_bad_setting_is_refused_with_the_fix(tmp_path: Path) -> None:
    assert load_settings(env={}).sending.quiet_after_sales_touch == timedelta(hours=48)
    (tmp_path / "drip.toml").write_text('[sending]\nquiet_after_sales_touch = "48 hours"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path / "drip.toml", env={})
    assert refused.value.message.endswith(
        "sending.quiet_after_sales_touch: '48 hours' is not a duration (e.g. 48h, 2d, 90m; 0 or "
        "off: never) (set it in the file or with DRIP_SENDING_QUIET_AFTER_SALES_TOUCH)"
    )
    with pytest.raises(ConfigError):
        load_settings(env={"DRIP_SENDING_QUIET_AFTER_SALES_TOUCH": "-2h"})
