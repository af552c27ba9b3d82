"""When the next email is due (campaigns.schedule): the step's earliest time in the lead's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dripengine.campaigns import SendWindow
from dripengine.campaigns.schedule import next_due, returned_due
from dripengine.campaigns.window import WINDOW_SPREAD, in_window

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = SendWindow()  # mon-fri 09:00-17:00
WEDNESDAY_NOON = datetime(2026, 1, 14, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
SATURDAY = datetime(2026, 1, 17, 12, 0, tzinfo=UTC)
MONDAY_OPEN = datetime(2026, 1, 19, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def test_a_step_due_inside_the_window_is_due_then() -> None:
    assert next_due(WEDNESDAY_NOON, WEEKDAYS, BERLIN, "ana@x.example") == WEDNESDAY_NOON


def test_a_step_due_outside_goes_at_the_next_opening_spread_by_address() -> None:
    times = {next_due(SATURDAY, WEEKDAYS, BERLIN, f"lead{i}@x.example") for i in range(50)}
    assert len(times) > 40  # a wave of leads does not all land on 09:00:00
    for when in times:
        assert MONDAY_OPEN <= when < MONDAY_OPEN + WINDOW_SPREAD
        assert in_window(when, WEEKDAYS, BERLIN)
    again = next_due(SATURDAY, WEEKDAYS, BERLIN, "lead7@x.example")
    assert again == next_due(SATURDAY, WEEKDAYS, BERLIN, "lead7@x.example")  # stable per lead


def test_an_enrollment_given_back_keeps_its_due_time_or_is_due_now() -> None:
    was = MONDAY_OPEN + timedelta(minutes=5)
    assert returned_due(was, SATURDAY) == was
    assert returned_due(None, SATURDAY) == SATURDAY
