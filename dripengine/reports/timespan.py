"""How far one instant is from another, the way people say it: ``in 2 h 10 min``, ``3 d 4 h ago``.

Pure: both instants are passed in (the app's clock gives ``now``). The two largest units are
shown, and the rest is dropped, never rounded up: "in 59 min" is never said as "in 1 h".
"""

from __future__ import annotations

from datetime import datetime, timedelta

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60))


def span(value: timedelta) -> str:
    """``2 h 10 min``, ``3 d``, ``45 s``: a positive span in its two largest units."""
    seconds = int(abs(value).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    parts = []
    for unit, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}")
        elif parts:
            break  # "2 d 10 min" reads as a typo; "2 d" it is
        if len(parts) == 2:
            break
    return " ".join(parts)


def relative(then: datetime, now: datetime) -> str:
    """``in 2 h 10 min`` when ``then`` is after ``now``, ``5 min ago`` before it, ``now`` at it."""
    if then == now:
        return "now"
    return f"in {span(then - now)}" if then > now else f"{span(now - then)} ago"


__all__ = ["relative", "span"]
