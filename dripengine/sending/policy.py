"""What to do with one due enrollment right now. Pure: the dispatcher loads, this decides.

In order: a suppressed address leaves every campaign; the campaign's exit rules (a reply, the time
limit); the next step by the lead's current score band (none left: the round is complete); not due
yet or outside the send window: wait for the next opening; a step whose condition is not met is
skipped; the frequency cap across all campaigns (at most N emails in any 7 days, a rep's sales
emails among them): wait until the oldest of them leaves the 7 days. Otherwise: send that step.
A sales touch (a rep's call, email or meeting) holds every marketing email to the lead for
``quiet`` after it (``sending.quiet_after_sales_touch``): the step waits, and goes out after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dripengine.campaigns import Campaign, Step, schedule
from dripengine.campaigns.sequence import Progress, condition_met, next_step
from dripengine.campaigns.window import in_window

CAP_PERIOD = timedelta(days=7)

Kind = Literal["send", "skip", "wait", "exit", "complete"]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    reason: str
    track: str | None = None
    step: Step | None = None
    until: datetime | None = None  # for "wait": the new next_due_at


@dataclass(frozen=True)
class DueLead:
    email: str
    score: float  # as it stands now (decayed by the caller)
    timezone: ZoneInfo  # the lead's zone, or the campaign's fallback
    suppressed: str | None = None  # why, when the address is on the suppression list
    last_touch: tuple[str, datetime] | None = None  # the latest sales touch up to now: kind, at


def decide(
    campaign: Campaign,
    lead: DueLead,
    progress: Progress,
    *,
    entered_at: datetime,
    recent_sends: Sequence[datetime],
    cap: int,
    now: datetime,
    sales_emails: Sequence[datetime] = (),
    quiet: timedelta = timedelta(0),
) -> Decision:
    """The next action for one enrollment at ``now``.

    ``recent_sends`` are the times of the lead's emails from every campaign (at least those of the
    last 7 days), ``sales_emails`` those of the emails reps sent it; ``cap`` is the most it may get
    in any 7 days, both kinds together. ``quiet``: how long after ``lead.last_touch`` it gets none.
    """
    if lead.suppressed:
        return Decision("exit", f"suppressed: {lead.suppressed}")
    if campaign.exit.exits_on("replied") and any(e == "replied" for _, e in progress.engaged):
        return Decision("exit", "replied")
    if campaign.exit.after_days and now >= entered_at + timedelta(days=campaign.exit.after_days):
        return Decision("exit", f"campaign time limit ({campaign.exit.after_days} days)")
    upcoming = next_step(campaign, lead.score, progress)
    if upcoming is None:
        return Decision("complete", "no steps left in the track")
    window = campaign.send.window
    touch_kind, touched_at = lead.last_touch or ("", now)
    held = touched_at + quiet
    if lead.last_touch and held > now and upcoming.earliest <= held:
        until = schedule.next_due(held, window, lead.timezone, lead.email)
        return Decision(
            "wait",
            f"held after a sales {touch_kind} ({touched_at:%Y-%m-%d %H:%M} UTC) "
            f"until {held:%Y-%m-%d %H:%M} UTC",
            upcoming.track,
            upcoming.step,
            until,
        )
    if upcoming.earliest > now:
        until = schedule.next_due(upcoming.earliest, window, lead.timezone, lead.email)
        return Decision(
            "wait", f"{upcoming.step.id} is not due yet", upcoming.track, upcoming.step, until
        )
    if not in_window(now, window, lead.timezone):
        until = schedule.next_due(now, window, lead.timezone, lead.email)
        return Decision("wait", "outside the send window", upcoming.track, upcoming.step, until)
    if not condition_met(upcoming.step.condition, progress):
        return Decision("skip", "condition not met", upcoming.track, upcoming.step)
    window_start = now - CAP_PERIOD
    recent = sorted(t for t in [*recent_sends, *sales_emails] if window_start < t <= now)
    if len(recent) >= cap:
        frees_at = recent[len(recent) - cap] + CAP_PERIOD
        until = schedule.next_due(frees_at, window, lead.timezone, lead.email)
        by_sales = sum(1 for t in sales_emails if window_start < t <= now)
        return Decision(
            "wait",
            f"frequency cap: {len(recent)} emails in 7 days (max {cap})"
            + (f", {by_sales} of them from sales" if by_sales else ""),
            upcoming.track,
            upcoming.step,
            until,
        )
    return Decision("send", "due", upcoming.track, upcoming.step)
