"""Working-time arithmetic of the SLA's clocks (funnel.sla_clock): table tests, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dripengine.cli.scaffold import SKELETON
from dripengine.exceptions import SLAError
from dripengine.funnel.sla import load_sla
from dripengine.funnel.sla_clock import WorkingTime, add_days, add_hours, hours_between, parse_hours

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = WorkingTime.of("Europe/Berlin", holidays=[date(2026, 12, 24), date(2026, 12, 25)])
US_OFFICE = WorkingTime.of("America/New_York")
ALWAYS = WorkingTime.of(
    "Europe/Berlin", days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], hours="00:00-24:00"
)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


HOURS = [
    # (case, working time, start, hours, due)
    ("in the day", OFFICE, berlin(2026, 11, 23, 10), 4, berlin(2026, 11, 23, 14)),
    ("to the end of the day", OFFICE, berlin(2026, 11, 23, 9), 8, berlin(2026, 11, 23, 17)),
    (
        "Friday 16:30, over the weekend",
        OFFICE,
        berlin(2026, 11, 27, 16, 30),
        24,
        berlin(2026, 12, 2, 16, 30),
    ),
    (
        "Friday 16:30, one hour",
        OFFICE,
        berlin(2026, 11, 27, 16, 30),
        1,
        berlin(2026, 11, 30, 9, 30),
    ),
    (
        "Saturday: counts from Monday 09:00",
        OFFICE,
        berlin(2026, 11, 28, 12),
        8,
        berlin(2026, 11, 30, 17),
    ),
    (
        "at 17:00: counts from the next morning",
        OFFICE,
        berlin(2026, 11, 23, 17),
        1,
        berlin(2026, 11, 24, 10),
    ),
    ("before opening", OFFICE, berlin(2026, 11, 23, 7, 15), 2, berlin(2026, 11, 23, 11)),
    (
        "holiday eve: 24th and 25th skipped",
        OFFICE,
        berlin(2026, 12, 23, 15),
        8,
        berlin(2026, 12, 28, 15),
    ),
    (
        "zero hours: the first working moment",
        OFFICE,
        berlin(2026, 11, 28, 12),
        0,
        berlin(2026, 11, 30, 9),
    ),
    # Europe/Berlin goes to summer time on Sunday 28 March 2027: 09:00 stays 09:00
    ("across the spring DST change", OFFICE, berlin(2027, 3, 26, 15), 8, berlin(2027, 3, 29, 15)),
    # ... and back on Sunday 31 October 2027
    ("across the autumn DST change", OFFICE, berlin(2027, 10, 29, 15), 8, berlin(2027, 11, 1, 15)),
    # the US changes on 8 March 2026, weeks before Europe
    ("New York, across DST", US_OFFICE, new_york(2026, 3, 6, 15), 24, new_york(2026, 3, 11, 15)),
    # round the clock: the 23-hour day of the change is 23 working hours, not 24
    ("24/7 over the short day", ALWAYS, berlin(2027, 3, 28, 0), 24, berlin(2027, 3, 29, 1)),
]


@pytest.mark.parametrize(
    ("working", "start", "hours", "due"),
    [case[1:] for case in HOURS],
    ids=[case[0] for case in HOURS],
)
def test_due_after_working_hours(
    working: WorkingTime, start: datetime, hours: int, due: datetime
) -> None:
    result = add_hours(working, start.astimezone(UTC), hours)
    assert result == due and result.tzinfo is UTC
    # the inverse: the working hours from the start to the due time are the commitment
    assert hours_between(working, start.astimezone(UTC), result) == pytest.approx(hours)


def test_dst_changes_the_wall_clock_span_not_the_office_hours() -> None:
    due = add_hours(OFFICE, berlin(2027, 3, 26, 15).astimezone(UTC), 8)
    assert due - berlin(2027, 3, 26, 15) == timedelta(hours=71)  # not 72: an hour was skipped
    assert due == datetime(2027, 3, 29, 13, tzinfo=UTC)  # 15:00 CEST
    us_due = add_hours(US_OFFICE, new_york(2026, 3, 6, 15), 24)
    assert us_due == datetime(2026, 3, 11, 19, tzinfo=UTC)  # 15:00 EDT, was 20:00 UTC in EST


DAYS = [
    ("Monday 10:00, two days", berlin(2026, 11, 23, 10), 2, berlin(2026, 11, 25, 10)),
    ("Friday 16:30, one day", berlin(2026, 11, 27, 16, 30), 1, berlin(2026, 11, 30, 16, 30)),
    ("Friday 16:30, ten days", berlin(2026, 11, 27, 16, 30), 10, berlin(2026, 12, 11, 16, 30)),
    ("Saturday: from Monday 09:00", berlin(2026, 11, 28, 12), 1, berlin(2026, 12, 1, 9)),
    ("Friday evening: from Monday 09:00", berlin(2026, 11, 27, 18), 1, berlin(2026, 12, 1, 9)),
    ("holiday eve", berlin(2026, 12, 23, 15), 1, berlin(2026, 12, 28, 15)),
    ("on the holiday", berlin(2026, 12, 24, 11), 1, berlin(2026, 12, 29, 9)),
    ("across the spring DST change", berlin(2027, 3, 26, 15), 1, berlin(2027, 3, 29, 15)),
    ("zero days", berlin(2026, 11, 28, 12), 0, berlin(2026, 11, 30, 9)),
]


@pytest.mark.parametrize(
    ("start", "days", "due"), [case[1:] for case in DAYS], ids=[case[0] for case in DAYS]
)
def test_due_after_working_days(start: datetime, days: int, due: datetime) -> None:
    assert add_days(OFFICE, start.astimezone(UTC), days) == due


OVERDUE = [
    ("the weekend does not count", berlin(2026, 11, 27, 17), berlin(2026, 11, 30, 8), 0.0),
    ("Friday 16:00 to Monday 10:00", berlin(2026, 11, 27, 16), berlin(2026, 11, 30, 10), 2.0),
    ("a whole week", berlin(2026, 11, 23, 9), berlin(2026, 11, 30, 9), 40.0),
    ("over Christmas", berlin(2026, 12, 23, 9), berlin(2026, 12, 28, 9), 8.0),
    ("end before begin", berlin(2026, 11, 23, 12), berlin(2026, 11, 23, 10), 0.0),
]


@pytest.mark.parametrize(
    ("begin", "end", "hours"), [case[1:] for case in OVERDUE], ids=[case[0] for case in OVERDUE]
)
def test_working_hours_between(begin: datetime, end: datetime, hours: float) -> None:
    assert hours_between(OFFICE, begin, end) == pytest.approx(hours)


def test_other_working_weeks() -> None:
    sun_to_thu = WorkingTime.of("Asia/Jerusalem", days=["sun", "mon", "tue", "wed", "thu"])
    friday = datetime(2026, 11, 27, 12, tzinfo=ZoneInfo("Asia/Jerusalem"))
    assert add_hours(sun_to_thu, friday, 1) == datetime(
        2026, 11, 29, 10, tzinfo=ZoneInfo("Asia/Jerusalem")
    )
    short = WorkingTime.of("UTC", hours="08:30-12:15")
    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert add_hours(short, start, 1) == datetime(2026, 11, 24, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9-17", "is not a span of hours"),
        ("09:00", "is not a span of hours"),
        ("17:00-09:00", "the end must come after the start"),
        ("09:00-25:00", "25:00 is not a time of day"),
        ("09:60-17:00", "09:60 is not a time of day"),
        ("24:00-24:00", "must start before 24:00"),
    ],
)
def test_hours_that_are_not_a_day_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_hours(text)


def test_a_calendar_with_no_working_day_is_refused_not_looped() -> None:
    every_day = [date(2026, 1, 1) + timedelta(days=n) for n in range(4000)]
    none = WorkingTime.of("UTC", days=["mon"], holidays=every_day)
    with pytest.raises(ValueError, match="no working day"):
        add_hours(none, datetime(2026, 1, 1, tzinfo=UTC), 1)


def test_the_sla_yaml_fields_are_checked_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(
        "sales_commitments:\n"
        "  on_no_decision: renurure\n"
        "working_time:\n"
        "  days: [monday, tues]\n"
        "  hours: 9-17\n"
        "  holidays: [2026-13-01]\n"
        "recycle_reasons:\n"
        "  sla_no_decision:\n"
        "    label: Mine\n",
        encoding="utf-8",
    )
    with pytest.raises(SLAError) as caught:
        load_sla(path)
    assert caught.value.errors == [
        f'{path}:2: sales_commitments.on_no_decision: unknown value "renurure" '
        '(did you mean "renurture"? use none, renurture)',
        f'{path}:4: working_time.days: "tues" is not a weekday (did you mean "tue"?) '
        "(use: mon, tue, wed, thu, fri, sat, sun)",
        f'{path}:5: working_time.hours: "9-17" is not a span of hours (write it as 09:00-17:00)',
        f"{path}:6: working_time.holidays[0]: Input should be a valid date or datetime, month "
        'value is outside expected range of 1-12 (got "2026-13-01")',
        f'{path}:8: recycle_reasons.sla_no_decision: "sla_no_decision" is the SLA\'s own reason (a lead recycled '
        "because sales gave no decision in time, sales_commitments.on_no_decision): name yours "
        "differently",
    ]


def test_the_shipped_sla_counts_in_berlin_office_hours() -> None:
    sla = load_sla(SKELETON / "sla.yaml")
    assert sla.sales_commitments.on_no_decision == "none"
    assert sla.clock.zone.key == "Europe/Berlin" and date(2026, 12, 24) in sla.clock.holidays
    assert "sla_no_decision" in sla.known_reasons and "sla_no_decision" not in sla.reason_stages
