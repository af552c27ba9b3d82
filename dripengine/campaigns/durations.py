"""Durations as campaign files write them: ``3d``, ``12h``, ``30m``, ``2w``, ``1d12h``, ``0``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_HINT", "format_duration", "parse_duration"]

DURATION_HINT = "use 3d, 12h, 30m"

_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}
# Units from the largest down, each at most once: "1d12h" is fine, "12h1d" and "1d1d" are not.
_DURATION = re.compile(r"(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``"3d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"1d12h"`` or ``"0"`` into a timedelta.

    Raises ValueError with a message fit for a campaign file error.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text == 0:
            return timedelta(0)
        raise ValueError(
            f'{text} is not a duration: add the unit, e.g. "{text}d" for {text} days ({DURATION_HINT})'
        )
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    value = text.strip()
    if value == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise ValueError(f'"{text}" is not a duration ({DURATION_HINT})')
    total = timedelta(0)
    try:
        for unit, amount in match.groupdict().items():
            if amount is not None:
                total += int(amount) * _UNITS[unit]
    except OverflowError:
        raise ValueError(f'"{text}" is too long a duration') from None
    return total


def format_duration(value: timedelta) -> str:
    """The shortest single-unit spelling ``parse_duration`` reads back: ``1d``, ``36h``, ``90m``, ``0``.

    Weeks are written as days (``14d``), which is how people plan drips. Raises ValueError for a
    negative duration or one that is not a whole number of minutes.
    """
    if value < timedelta(0):
        raise ValueError(f"{value} is negative; a duration cannot be")
    if value % timedelta(minutes=1):
        raise ValueError(f"{value} is not a whole number of minutes")
    if not value:
        return "0"
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if not value % size:
            return f"{value // size}{unit}"
    raise AssertionError("unreachable: every whole-minute duration divides by a minute")
