"""``drip --now TIME``: ISO times, spans from now and ``next tue 10:00``, so examples do not go stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from dripengine.campaigns import load_campaign_file
from dripengine.campaigns.schedule import next_due
from dripengine.campaigns.window import in_window
from dripengine.cli import main
from dripengine.cli.nowtime import parse_now
from tests.conftest import REPO

FRIDAY = datetime(2026, 12, 4, 5, 43, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+3d", datetime(2026, 12, 7, 5, 43, tzinfo=UTC)),
        ("+36h", datetime(2026, 12, 5, 17, 43, tzinfo=UTC)),
        ("-12h", datetime(2026, 12, 3, 17, 43, tzinfo=UTC)),
        ("+1w2d", datetime(2026, 12, 13, 5, 43, tzinfo=UTC)),
        ("next tue 10:00", datetime(2026, 12, 8, 10, 0, tzinfo=UTC)),
        ("next Tuesday  10:00", datetime(2026, 12, 8, 10, 0, tzinfo=UTC)),
        ("next mon", datetime(2026, 12, 7, tzinfo=UTC)),
        ("next sun 23:59", datetime(2026, 12, 13, 23, 59, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_forms(text: str, expected: datetime) -> None:
    assert parse_now(text, FRIDAY) == expected


def test_next_weekday_is_in_next_week_from_every_day() -> None:
    monday = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    for offset in range(7):
        today = monday + timedelta(days=offset)
        moment = parse_now("next tue 10:00", today)
        assert moment == datetime(2026, 12, 15, 10, 0, tzinfo=UTC), today


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3d", '"3d" needs a sign: +3d (ahead of now) or -3d (back)'),
        ("tue 10:00", '"tue 10:00" is not a time (did you mean "next tue 10:00"?)'),
        ("next tuseday 10:00", "'tuseday' is not a weekday (did you mean \"tue\"?)"),
        ("next tue 24:00", "24:00 is not a time of day (00:00 to 23:59)"),
        ("+3 days", '"+3 days" is not a span from now (use +3d, +36h, -12h or +1w2d'),
        ("+99999999d", "is outside the calendar (years 1 to 9999 in UTC)"),
        ("9999-12-31T23:59:59-05:00", "is outside the calendar"),
        ("soon", "a span from now such as +3d or -12h, or a weekday of next week"),
    ],
)
def test_bad_values_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_now(text, FRIDAY)
    assert message in str(refused.value)


def test_cli_refuses_a_bad_now_in_one_line() -> None:
    result = CliRunner().invoke(main, ["--now", "next tuseday", "sla"])
    assert result.exit_code == 2
    assert "Invalid value for '--now'" in result.stderr
    assert 'did you mean "tue"?' in result.stderr
    assert "Traceback" not in result.output


def test_the_readme_jump_sends_whichever_day_it_is_run() -> None:
    """README: recycle jane (Europe/Berlin) now, then ``drip --now "next tue 10:00" run --once``.

    Her first step must be due by then and the moment inside the campaign's window, for a recycle
    at any hour of any weekday, in winter and in summer time."""
    campaign = load_campaign_file(REPO / "campaigns" / "lost-sql-winback.yaml")
    first = campaign.tracks["cold"].steps[0]
    window, berlin = campaign.send.window, ZoneInfo("Europe/Berlin")
    for season in (datetime(2026, 12, 7, tzinfo=UTC), datetime(2027, 7, 5, tzinfo=UTC)):
        for hour in range(0, 24 * 7, 1):
            recycled = season + timedelta(hours=hour, minutes=59)
            due = next_due(recycled + first.wait, window, berlin, "jane@acme.example")
            jump = parse_now("next tue 10:00", recycled)
            assert due <= jump, (recycled, due, jump)
            assert in_window(jump, window, berlin), jump
