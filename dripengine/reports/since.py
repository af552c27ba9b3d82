"""``--since``: a span back from now (``7d``, ``12h``, ``2w``, ``1d12h``) or an ISO date / time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from dripengine.campaigns.durations import parse_duration

SINCE_HINT = "use a span back from now such as 7d, 12h or 2w, or an ISO date such as 2026-11-01"


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``text`` names, as aware UTC; ValueError naming the accepted forms.

    A date alone is midnight UTC of that day; a time without an offset is taken as UTC.
    """
    value = text.strip()
    try:
        span = parse_duration(value)
    except ValueError:
        pass
    else:
        if span:
            return now - span
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f'"{text}" is not a time to list from ({SINCE_HINT})') from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = ["SINCE_HINT", "parse_since"]
