"""When the demo's story happens: the first send day, and the clock the demo moves.

Time is a clock the demo moves: nothing waits for real days.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

SEND_AT = (14, 30)  # UTC; see first_send_time


def first_send_time(now: datetime) -> datetime:
    """14:30 UTC on the first Tuesday to Thursday at least two days after ``now``.

    Inside the example campaigns' windows (09:00-17:00) for the demo's leads in Europe and New
    York in every season: 15:30 or 16:30 in Berlin, 09:30 or 10:30 in New York, past the half
    hour a lead moved to a window's opening is spread over. (15:00 UTC was 17:00 in Berlin in
    summer time: the window had closed and Jane got no email from April to October.)
    """
    earliest = now.astimezone(UTC) + timedelta(days=2)
    day = earliest.replace(hour=SEND_AT[0], minute=SEND_AT[1], second=0, microsecond=0)
    if day < earliest:
        day += timedelta(days=1)
    while day.weekday() not in (1, 2, 3):
        day += timedelta(days=1)
    return day


class DemoClock:
    """The demo's clock: stands where the story puts it, then (while the demo keeps serving at the
    end) runs on from there in real time."""

    def __init__(self, current: datetime) -> None:
        self.current = current
        self._since: float | None = None

    def now(self) -> datetime:
        if self._since is None:
            return self.current
        return self.current + timedelta(seconds=time.monotonic() - self._since)

    def run_on(self) -> None:
        self._since = time.monotonic()
