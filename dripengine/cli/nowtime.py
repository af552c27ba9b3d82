"""``drip --now TIME``: an ISO time, a span from now (``+3d``, ``-12h``) or ``next tue 10:00``. Pure.

The relative forms keep examples and scripts working whenever they are run: a fixed date in a
README goes stale, ``next tue 10:00`` does not. ``next WEEKDAY`` is that day of next week (weeks
start on Monday), so it is always at least one day and at most thirteen days ahead; a time of day
is taken as UTC, like an ISO time written without an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from dripengine.suggest import closest

__all__ = ["NOW_HINT", "parse_now"]

NOW_HINT = (
    "use an ISO time such as 2026-12-01T10:00:00+00:00, a span from now such as +3d or -12h, "
    "or a weekday of next week such as 'next tue 10:00' (UTC)"
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NEXT = re.compile(r"next\s+(?P<day>[^\s\d]+)(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{2}))?", re.I)
_BARE_DAY = re.compile(r"(?P<day>[a-z]+)(?:\s+\d{1,2}:\d{2})?", re.I)


def parse_now(text: str, now: datetime) -> datetime:
    """The moment ``text`` names, as aware UTC, reading relative forms from ``now``.

    Raises ValueError with one line that names the accepted forms.
    """
    try:
        return _parse(text, now)
    except OverflowError:
        raise ValueError(f'"{text}" is outside the calendar (years 1 to 9999 in UTC)') from None


def _parse(text: str, now: datetime) -> datetime:
    value = " ".join(text.split())
    if value[:1] in "+-" and len(value) > 1:
        return now.astimezone(UTC) + _span(value)
    next_day = _NEXT.fullmatch(value)
    if next_day:
        return _next_weekday(value, next_day, now)
    bare = _BARE_DAY.fullmatch(value)
    if bare and _weekday(bare["day"]) is not None:
        raise ValueError(f'"{text}" is not a time (did you mean "next {value}"?)')
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        if re.fullmatch(r"\d+[wdhm]\S*", value):  # "3d": ahead or back?
            raise ValueError(
                f'"{text}" needs a sign: +{value} (ahead of now) or -{value} (back)'
            ) from None
        raise ValueError(f'"{text}" is not a time ({NOW_HINT})') from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _span(value: str) -> timedelta:
    from dripengine.campaigns.durations import parse_duration  # the package imports its loader

    try:
        span = parse_duration(value[1:])
    except ValueError:
        raise ValueError(
            f'"{value}" is not a span from now (use +3d, +36h, -12h or +1w2d: w, d, h, m)'
        ) from None
    return span if value[0] == "+" else -span


def _weekday(word: str) -> int | None:
    name = word.lower()
    if name in WEEKDAYS:
        return WEEKDAYS.index(name)
    if name in _FULL:
        return _FULL.index(name)
    if len(name) >= 3 and any(full.startswith(name) for full in _FULL):  # "tues", "thurs"
        return next(i for i, full in enumerate(_FULL) if full.startswith(name))
    return None


def _next_weekday(text: str, match: re.Match[str], now: datetime) -> datetime:
    day = _weekday(match["day"])
    if day is None:
        guess = closest(match["day"].lower(), (*_FULL, *WEEKDAYS))
        hint = f' (did you mean "{guess[:3]}"?)' if guess else f" (use {', '.join(WEEKDAYS)})"
        raise ValueError(f'"{text}": {match["day"]!r} is not a weekday{hint}')
    at = time(0, 0)
    if match["hour"] is not None:
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f'"{text}": {hour}:{minute:02d} is not a time of day (00:00 to 23:59)')
        at = time(hour, minute)
    today = now.astimezone(UTC).date()
    next_monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(next_monday + timedelta(days=day), at, tzinfo=UTC)
