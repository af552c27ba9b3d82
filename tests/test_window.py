"""Send windows: the next instant an email may go out, in the lead's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripengine.campaigns import SendWindow, in_window, next_opening, resolve_timezone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = SendWindow()  # mon-fri 09:00-17:00
MON_THU = SendWindow(days=[0, 1, 2, 3], start=time(9), end=time(17))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_an_instant_inside_the_window_is_kept() -> None:
    earliest = local(BERLIN, 2026, 1, 14, 10, 30, 15)  # a Wednesday
    assert next_opening(earliest, WEEKDAYS, BERLIN) == earliest.astimezone(UTC)
    assert next_opening(earliest, WEEKDAYS, BERLIN).tzinfo is UTC


def test_before_the_window_waits_for_the_same_day_start() -> None:
    assert next_opening(local(BERLIN, 2026, 1, 14, 6, 0), WEEKDAYS, BERLIN) == utc(
        2026, 1, 14, 8, 0
    )


def test_the_end_is_exclusive() -> None:
    assert next_opening(local(BERLIN, 2026, 1, 14, 16, 59, 59), WEEKDAYS, BERLIN) == utc(
        2026, 1, 14, 15, 59, 59
    )
    assert next_opening(local(BERLIN, 2026, 1, 14, 17, 0), WEEKDAYS, BERLIN) == utc(
        2026, 1, 15, 8, 0
    )


def test_friday_evening_waits_for_monday() -> None:
    assert next_opening(local(BERLIN, 2026, 1, 16, 18, 0), WEEKDAYS, BERLIN) == utc(
        2026, 1, 19, 8, 0
    )


def test_a_monday_to_thursday_window_skips_friday() -> None:
    earliest = local(BERLIN, 2026, 1, 15, 17, 0)  # Thursday, just closed
    assert next_opening(earliest, MON_THU, BERLIN) == utc(2026, 1, 19, 8, 0)


def test_the_lead_zone_decides_not_utc() -> None:
    # 13:59 UTC on a Friday is 08:59 in New York (closed) but 14:59 in Berlin (open).
    earliest = utc(2026, 1, 16, 13, 59)
    assert next_opening(earliest, WEEKDAYS, NEW_YORK) == utc(2026, 1, 16, 14, 0)
    assert next_opening(earliest, WEEKDAYS, BERLIN) == earliest


def test_berlin_spring_forward_weekend() -> None:
    # Clocks go from CET (+1) to CEST (+2) on Sunday 2026-03-29.
    friday_evening = local(BERLIN, 2026, 3, 27, 18, 0)
    assert next_opening(friday_evening, WEEKDAYS, BERLIN) == utc(2026, 3, 30, 7, 0)


def test_berlin_fall_back_weekend() -> None:
    # Clocks go from CEST (+2) back to CET (+1) on Sunday 2026-10-25.
    friday_evening = local(BERLIN, 2026, 10, 23, 18, 0)
    assert next_opening(friday_evening, WEEKDAYS, BERLIN) == utc(2026, 10, 26, 8, 0)


def test_new_york_dst_changes() -> None:
    # EST (-5) -> EDT (-4) on Sunday 2026-03-08; EDT -> EST on Sunday 2026-11-01.
    assert next_opening(local(NEW_YORK, 2026, 3, 6, 18, 0), WEEKDAYS, NEW_YORK) == utc(
        2026, 3, 9, 13, 0
    )
    assert next_opening(local(NEW_YORK, 2026, 10, 30, 18, 0), WEEKDAYS, NEW_YORK) == utc(
        2026, 11, 2, 14, 0
    )


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    sunday_night = SendWindow(days=[6], start=time(2, 30), end=time(5))
    opening = next_opening(local(BERLIN, 2026, 3, 28, 12, 0), sunday_night, BERLIN)
    assert opening == utc(2026, 3, 29, 1, 0)
    assert opening.astimezone(BERLIN).time() == time(3, 0)


def test_new_york_skipped_hour() -> None:
    # 02:00-03:00 does not exist in New York on 2026-03-08; 02:15 opens at 03:00 EDT (07:00 UTC).
    window = SendWindow(days=[6], start=time(2, 15), end=time(4))
    assert next_opening(local(NEW_YORK, 2026, 3, 7, 9, 0), window, NEW_YORK) == utc(
        2026, 3, 8, 7, 0
    )


def test_a_repeated_hour_is_inside_both_times() -> None:
    # On 2026-10-25 Berlin's 02:00-03:00 happens twice (CEST, then CET).
    window = SendWindow(days=[6], start=time(2), end=time(2, 30))
    first = next_opening(utc(2026, 10, 24, 12, 0), window, BERLIN)
    assert first == utc(2026, 10, 25, 0, 0)  # 02:00 CEST
    after_first = utc(2026, 10, 25, 0, 40)  # 02:40 CEST: outside
    assert not in_window(after_first, window, BERLIN)
    assert next_opening(after_first, window, BERLIN) == utc(2026, 10, 25, 1, 0)  # 02:00 CET


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        next_opening(datetime(2026, 1, 1, 12, 0), WEEKDAYS, BERLIN)


def test_a_wait_that_ends_after_closing_moves_to_the_next_opening() -> None:
    enrolled = local(BERLIN, 2026, 1, 15, 16, 0)  # Thursday afternoon
    assert next_opening(enrolled + timedelta(days=1), WEEKDAYS, BERLIN) == utc(2026, 1, 16, 15, 0)
    assert next_opening(enrolled + timedelta(days=1, hours=2), WEEKDAYS, BERLIN) == utc(
        2026, 1, 19, 8, 0
    )


@pytest.mark.parametrize(
    ("lead_tz", "expected"),
    [
        ("America/New_York", "America/New_York"),
        (" Asia/Kolkata ", "Asia/Kolkata"),
        (None, "Europe/Berlin"),
        ("", "Europe/Berlin"),
        ("Mars/Olympus", "Europe/Berlin"),
        ("../../etc/passwd", "Europe/Berlin"),
        ("+02:00", "Europe/Berlin"),
    ],
)
def test_resolve_timezone_falls_back_to_the_campaign_zone(
    lead_tz: str | None, expected: str
) -> None:
    assert resolve_timezone(lead_tz, "Europe/Berlin") == ZoneInfo(expected)


# --- spreading a wave of leads -------------------------------------------------------------

SATURDAY = local(BERLIN, 2026, 1, 17, 12, 0)
MONDAY_OPEN = utc(2026, 1, 19, 8, 0)


def test_spread_is_stable_per_key_and_below_the_spread() -> None:
    spread = timedelta(minutes=30)
    first = next_opening(SATURDAY, WEEKDAYS, BERLIN, spread_key="ana@x.example", spread=spread)
    again = next_opening(SATURDAY, WEEKDAYS, BERLIN, spread_key="ana@x.example", spread=spread)
    assert first == again
    assert MONDAY_OPEN <= first < MONDAY_OPEN + spread
    openings = {
        next_opening(SATURDAY, WEEKDAYS, BERLIN, spread_key=f"lead{i}@x.example", spread=spread)
        for i in range(50)
    }
    assert len(openings) > 40  # not all at 09:00:00


def test_spread_does_not_move_an_instant_already_inside() -> None:
    inside = local(BERLIN, 2026, 1, 14, 10, 0)
    moved = next_opening(inside, WEEKDAYS, BERLIN, spread_key="k", spread=timedelta(hours=1))
    assert moved == inside.astimezone(UTC)


def test_spread_without_a_key_or_length_does_nothing() -> None:
    assert next_opening(SATURDAY, WEEKDAYS, BERLIN, spread=timedelta(hours=1)) == MONDAY_OPEN
    assert next_opening(SATURDAY, WEEKDAYS, BERLIN, spread_key="k") == MONDAY_OPEN


def test_spread_never_passes_the_window_end() -> None:
    short = SendWindow(days=[0], start=time(9), end=time(9, 5))
    for i in range(200):
        when = next_opening(SATURDAY, short, BERLIN, spread_key=str(i), spread=timedelta(days=2))
        assert MONDAY_OPEN <= when < MONDAY_OPEN + timedelta(minutes=5)


# --- properties ----------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # DST changes around midnight
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",
]
quarter_hours = st.integers(0, 24 * 4 - 1)


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(0, 24 * 4 - 2))
    end = draw(st.integers(start + 1, 24 * 4 - 1))
    return SendWindow(
        days=draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True)),
        start=time(start // 4, start % 4 * 15),
        end=time(end // 4, end % 4 * 15),
    )


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300)
@given(instants, windows(), st.sampled_from(ZONES), st.none() | st.text(max_size=10))
def test_a_computed_send_time_is_always_inside_its_window(
    earliest: datetime, window: SendWindow, zone: str, key: str | None
) -> None:
    tz = ZoneInfo(zone)
    when = next_opening(earliest, window, tz, spread_key=key, spread=timedelta(hours=1))
    assert when >= earliest
    assert in_window(when, window, tz)
    assert when - earliest < timedelta(days=8)


@settings(max_examples=60)
@given(instants, windows(), st.sampled_from(ZONES))
def test_nothing_earlier_is_inside(earliest: datetime, window: SendWindow, zone: str) -> None:
    tz = ZoneInfo(zone)
    when = next_opening(earliest, window, tz)
    if when > earliest:
        assert not in_window(when - timedelta(seconds=1), window, tz)
    # Windows are at least 15 minutes long, so a 15-minute scan cannot step over one.
    probe = earliest
    while probe < when:
        assert not in_window(probe, window, tz), probe
        probe += timedelta(minutes=15)
