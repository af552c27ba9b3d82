"""When an enrollment's next email is due: the rule every place that sets ``next_due_at`` asks. Pure.

A step becomes due ``wait`` after the moment it counts from (the enrollment's start for a first
step, the previous step's send or skip otherwise, ``now`` for a resumed enrollment): that is its
*earliest* time. :func:`next_due` moves it into the campaign's send window in the lead's own zone
(:mod:`dripengine.campaigns.window`) and, when the window was closed, spreads the leads that land
on the same opening over its first half hour by their address (``WINDOW_SPREAD``), so a wave of
recycled leads does not reach the provider in the same second. Recycling (first step, resume) and
the dispatcher's advance to the next step use it.

:func:`returned_due` is the one case that keeps a time instead of computing one: an enrollment
given back by an undone unsubscribe is due when it was due before the click, a time that was
already in the window; when it has moved on since, it is due at once and the send policy waits
for the window as for any due enrollment.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dripengine.campaigns.schema import SendWindow
from dripengine.campaigns.window import WINDOW_SPREAD, next_opening

__all__ = ["next_due", "returned_due"]


def next_due(earliest: datetime, window: SendWindow, tz: ZoneInfo, email: str) -> datetime:
    """When a step whose wait ends at ``earliest`` goes out to the lead ``email`` in zone ``tz``:
    ``earliest`` itself when ``window`` is open then, else the next opening plus the lead's
    stable spread (UTC, aware)."""
    return next_opening(earliest, window, tz, spread_key=email, spread=WINDOW_SPREAD)


def returned_due(was_due: datetime | None, now: datetime) -> datetime:
    """When an enrollment given back is due: ``was_due`` (when it was due before it was taken
    away, None when it has moved to another step or round since), else ``now``."""
    return was_due if was_due is not None else now
