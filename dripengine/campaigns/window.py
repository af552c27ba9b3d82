"""Send-window arithmetic: when may an email go out, in the lead's own time zone. Pure functions.

An instant is *inside* a window when its local wall-clock time, in the given zone, falls on one of
the window's weekdays and in ``[start, end)``. Daylight saving time follows from that definition:
on a spring-forward day a window opening inside the skipped hour opens when the clocks jump; on a
fall-back day a repeated wall time is inside the window both times it happens.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dripengine.campaigns.schema import SendWindow, is_valid_timezone

__all__ = ["WINDOW_SPREAD", "in_window", "next_opening", "resolve_timezone"]

# Leads moved to the start of a send window are spread over its first half hour, so a wave of
# recycled leads does not reach the provider (and the recipients' servers) in the same second.
WINDOW_SPREAD = timedelta(minutes=30)

_SEARCH_DAYS = 9  # today plus a full week and a spare day covers every weekly pattern


def in_window(instant: datetime, window: SendWindow, tz: ZoneInfo) -> bool:
    """True when ``instant`` (aware) lies inside ``window`` in zone ``tz``."""
    local = _aware(instant).astimezone(tz)
    return local.weekday() in window.days and window.start <= local.time() < window.end


def next_opening(
    earliest: datetime,
    window: SendWindow,
    tz: ZoneInfo,
    *,
    spread_key: str | None = None,
    spread: timedelta = timedelta(0),
) -> datetime:
    """The first instant at or after ``earliest`` inside ``window`` in ``tz``, in UTC.

    When ``earliest`` is outside the window the answer is the moment the next opening starts;
    with a ``spread_key`` and a ``spread``, a stable per-key offset below ``spread`` is added
    (staying inside the window) so a wave of leads does not all land on 09:00:00.
    """
    earliest = _aware(earliest).astimezone(UTC)
    if in_window(earliest, window, tz):
        return earliest
    local_day = earliest.astimezone(tz).date()
    candidates = _search(local_day, frozenset(window.days), window.start, window.end, tz)
    index = bisect_left(candidates, earliest)
    if index == len(candidates):  # unreachable for a valid window (days is never empty)
        raise ValueError(f"the send window {window!r} never opens")
    opening = candidates[index]
    if spread_key is not None and spread > timedelta(0):
        opening = _spread(opening, window, tz, spread_key, spread)
    return opening


def resolve_timezone(lead_tz: str | None, fallback: str) -> ZoneInfo:
    """The lead's own zone when it names a real IANA zone, otherwise the campaign's ``fallback``."""
    if lead_tz and is_valid_timezone(lead_tz.strip()):
        return ZoneInfo(lead_tz.strip())
    return ZoneInfo(fallback)


# --- helpers ---------------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
    return value


@lru_cache(maxsize=4096)
def _search(
    local_day: date, days: frozenset[int], start: time, end: time, tz: ZoneInfo
) -> tuple[datetime, ...]:
    """Every opening on the ``_SEARCH_DAYS`` local days from ``local_day``, sorted (UTC).

    Memoised: a wave of leads in the same zone and window shares the same few local days, and
    the search (with its binary search for clock changes) cost ~50 µs a call."""
    return tuple(
        sorted(
            instant
            for offset in range(_SEARCH_DAYS)
            for instant in _openings(local_day + timedelta(days=offset), days, start, end, tz)
        )
    )


def _openings(
    day: date, days: frozenset[int], start: time, end: time, tz: ZoneInfo
) -> list[datetime]:
    """Instants on local ``day`` where the window may begin: the wall clock reaching ``start``
    (once, or twice in a repeated hour), and any clock change that lands inside the window."""
    if day.weekday() not in days:
        return []
    found = []
    for fold in (0, 1):
        local = datetime.combine(day, start, tzinfo=tz).replace(fold=fold)
        instant = local.astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            found.append(instant)
    transition = _transition_on(day, tz)
    if transition is not None:
        local_transition = transition.astimezone(tz)
        if local_transition.weekday() in days and start <= local_transition.time() < end:
            found.append(transition)
    return found


def _transition_on(day: date, tz: ZoneInfo) -> datetime | None:
    """The instant the zone's UTC offset changes during local ``day`` (to the second), if any."""
    low = int(datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).timestamp()) - 3 * 3600
    high = low + 30 * 3600
    before = _offset_at(low, tz)
    if _offset_at(high, tz) == before:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, tz) == before:
            low = middle
        else:
            high = middle
    instant = datetime.fromtimestamp(high, UTC)
    return instant if instant.astimezone(tz).date() == day else None


def _offset_at(timestamp: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(tz).utcoffset()


def _spread(
    opening: datetime, window: SendWindow, tz: ZoneInfo, key: str, spread: timedelta
) -> datetime:
    """Move ``opening`` by a stable per-key offset below ``spread``, staying inside the window."""
    day = opening.astimezone(tz).date()
    length = datetime.combine(day, window.end) - datetime.combine(day, window.start)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    limit = int(min(spread, length).total_seconds())
    seconds = int.from_bytes(digest[:8], "big") % max(1, limit)
    offset = timedelta(seconds=seconds)
    while offset and not in_window(opening + offset, window, tz):
        offset = timedelta(seconds=int(offset.total_seconds()) // 2)
    return opening + offset
