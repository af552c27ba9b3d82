"""Working time, the clock the SLA's commitments run on. Pure: plain values in, aware UTC out.

A :class:`WorkingTime` is a time zone (IANA), the working days of the week, the working hours of
each of them (local wall-clock times, the same every working day) and holidays (local dates).
Each working day is one interval ``[start, end)`` of local time turned into UTC with the zone's
rules of that date, so a clock that crosses a DST change keeps to the office hours: 09:00 is
09:00 on both sides, and an hour of work is an hour of real time.

- :func:`add_hours`: when ``hours`` working hours after ``start`` have passed (the first-touch
  clock). A start outside working time starts the count at the next working moment.
- :func:`add_days`: the same local time ``days`` working days after the first working moment at
  or after ``start`` (the decision clock): handed back Friday 16:30, one working day is due
  Monday 16:30; handed back Saturday, Tuesday 09:00.
- :func:`hours_between`: working hours from one moment to another (how overdue a clock is).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_HOURS",
    "WEEKDAYS",
    "WorkingTime",
    "add_days",
    "add_hours",
    "hours_between",
    "parse_hours",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_DAYS = ("mon", "tue", "wed", "thu", "fri")
DEFAULT_HOURS = "09:00-17:00"
# no working day in this many days after a start: the calendar has none (holidays on every one)
SEARCH_DAYS = 3700


@dataclass(frozen=True)
class WorkingTime:
    zone: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    start: time
    end_minutes: int  # minutes after local midnight; 1440 is midnight at the end of the day
    holidays: frozenset[date] = frozenset()

    @classmethod
    def of(
        cls,
        timezone: str = "UTC",
        days: Iterable[str] = DEFAULT_DAYS,
        hours: str = DEFAULT_HOURS,
        holidays: Iterable[date] = (),
    ) -> WorkingTime:
        """From the names ``sla.yaml`` uses; ValueError names what is wrong."""
        start, end = parse_hours(hours)
        return cls(
            ZoneInfo(timezone),
            frozenset(WEEKDAYS.index(day) for day in days),
            start,
            end,
            frozenset(holidays),
        )

    def working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def interval(self, day: date) -> tuple[datetime, datetime]:
        """The working hours of local ``day`` in UTC (whether or not it is a working day)."""
        start = datetime.combine(day, self.start, tzinfo=self.zone)
        end_day = day + timedelta(days=self.end_minutes // 1440)
        minutes = self.end_minutes % 1440
        end = datetime.combine(end_day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def intervals(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals that end after ``since``, in order (the first one clipped to
        start no earlier than ``since``). Endless: the caller stops."""
        day = since.astimezone(self.zone).date()
        idle = 0
        while True:
            if self.working_day(day):
                idle = 0
                start, end = self.interval(day)
                if end > since:
                    yield max(start, since), end
            else:
                idle += 1
                if idle > SEARCH_DAYS:
                    raise ValueError(f"no working day in the {SEARCH_DAYS} days after {day}")
            day += timedelta(days=1)


def parse_hours(text: str) -> tuple[time, int]:
    """``"09:00-17:00"`` -> (09:00, 1020); ``"00:00-24:00"`` is the whole day. ValueError if not."""
    parts = text.replace(" ", "").split("-")
    if len(parts) != 2:
        raise ValueError(f'"{text}" is not a span of hours (write it as 09:00-17:00)')
    start, end = (_minutes(part, text) for part in parts)
    if start >= 1440:
        raise ValueError(f'"{text}": the working day must start before 24:00')
    if end <= start:
        raise ValueError(
            f'"{text}": the end must come after the start on the same day (e.g. 09:00-17:00)'
        )
    return time(start // 60, start % 60), end


def _minutes(part: str, text: str) -> int:
    hour, _, minute = part.partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and len(hour) <= 2):
        raise ValueError(f'"{text}" is not a span of hours (write it as 09:00-17:00)')
    value = int(hour) * 60 + int(minute)
    if int(minute) > 59 or value > 1440:
        raise ValueError(f'"{text}": {part} is not a time of day (00:00 to 24:00)')
    return value


def add_hours(working: WorkingTime, start: datetime, hours: float) -> datetime:
    """The moment ``hours`` working hours after ``start`` have passed."""
    remaining = timedelta(hours=hours)
    for begin, end in working.intervals(start):
        if begin + remaining <= end:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: intervals() is endless")


def add_days(working: WorkingTime, start: datetime, days: int) -> datetime:
    """The same local time ``days`` working days after the first working moment from ``start``."""
    first = next(working.intervals(start))[0]
    local = first.astimezone(working.zone)
    day, searched = local.date(), 0
    for _ in range(days):
        day += timedelta(days=1)
        while not working.working_day(day):
            day += timedelta(days=1)
            searched += 1
            if searched > SEARCH_DAYS:
                raise ValueError(f"no working day in the {SEARCH_DAYS} days after {local.date()}")
    due = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=working.zone)
    return due.astimezone(UTC)


def hours_between(working: WorkingTime, begin: datetime, end: datetime) -> float:
    """Working hours from ``begin`` to ``end`` (0 when ``end`` is not after ``begin``)."""
    total = timedelta()
    if end <= begin:
        return 0.0
    for start, stop in working.intervals(begin):
        if start >= end:
            break
        total += min(stop, end) - start
    return total.total_seconds() / 3600
