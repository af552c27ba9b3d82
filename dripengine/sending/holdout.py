"""A holdout enrollment at its due time: the step the treated group would get now is held back.
Pure.

A lead in a campaign's holdout group (docs/holdout.md) is enrolled like any other and walks the
steps of its track on the treated group's schedule, each step's wait from the moment the one before
was due, inside the send window, so it stays active (and exits, and completes) when a mailed lead
would: "enrolled -> requalified" is measured the same way for both groups. Nothing is sent and
nothing is recorded as a message: no provider ever sees the lead. It still exits on suppression
and on the campaign's time limit; a requalification exits it like any enrollment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dripengine.campaigns import Campaign, schedule
from dripengine.sending.policy import Decision, DueLead

__all__ = ["hold_back"]


def hold_back(
    campaign: Campaign,
    track_name: str,
    current_step: str | None,
    lead: DueLead,
    *,
    entered_at: datetime,
    now: datetime,
) -> Decision:
    """``wait`` for the step after the held-back one, ``complete`` after the last, or ``exit``."""
    if lead.suppressed:
        return Decision("exit", f"suppressed: {lead.suppressed}")
    if campaign.exit.after_days and now >= entered_at + timedelta(days=campaign.exit.after_days):
        return Decision("exit", f"campaign time limit ({campaign.exit.after_days} days)")
    track = campaign.tracks.get(track_name)
    if track is None:  # the track was renamed since: the lead's band's track, from its start
        track_name, track = campaign.track_for_score(lead.score)
        current_step = track.steps[0].id
    ids = [step.id for step in track.steps]
    if current_step not in ids:
        return Decision("complete", "holdout: no steps left in the track")
    following = track.steps[ids.index(current_step) + 1 :]
    if not following:
        return Decision("complete", "holdout: no steps left in the track")
    upcoming = following[0]
    until = schedule.next_due(now + upcoming.wait, campaign.send.window, lead.timezone, lead.email)
    return Decision("wait", f"holdout: {current_step} held back", track_name, upcoming, until)
