"""Where a lead is in a campaign, and what comes next. Pure: the daemon and ``simulate`` share it.

A campaign has tracks keyed by score band; the lead's *current* score picks the track each time a
step is chosen. Every track keeps its own place: the next step of a track is its first step not yet
sent or skipped in this round, so a lead that warms up moves to the warm track's first step, and one
that cools down again continues the cold track where it left it. A round ends when the track the
score points at has no steps left.

Conditions are decided when a step falls due (engagement can arrive until then), not ahead: a step
whose condition fails is skipped at its due time and the next step's wait counts from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.schema import Condition

ENGAGEMENTS = ("opened", "clicked", "replied")
# an engagement event, as the step conditions name it
CONDITION_FOR_EVENT = {"open": "opened", "click": "clicked", "reply": "replied"}


@dataclass(frozen=True)
class Progress:
    """An enrollment's round so far."""

    last_at: datetime  # when the previous step was sent or skipped (the start, before any)
    done: frozenset[str] = frozenset()  # step ids sent or skipped in this round
    sent: tuple[str, ...] = ()  # step ids sent, in order
    engaged: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (step id, event)

    def after(self, step_id: str, at: datetime, *, sent: bool) -> Progress:
        return Progress(
            last_at=at,
            done=self.done | {step_id},
            sent=(*self.sent, step_id) if sent else self.sent,
            engaged=self.engaged,
        )

    def with_engagement(self, items: Iterable[tuple[str, str]]) -> Progress:
        return Progress(self.last_at, self.done, self.sent, self.engaged | frozenset(items))


@dataclass(frozen=True)
class NextStep:
    track: str
    step: Step
    index: int  # position in its track
    earliest: datetime  # previous step + this step's wait, before the send window is applied


def next_step(campaign: Campaign, score: float, progress: Progress) -> NextStep | None:
    """The step to send next for a lead with ``score``, or None when the round is complete."""
    track_name, track = campaign.track_for_score(score)
    for index, step in enumerate(track.steps):
        if step.id not in progress.done:
            return NextStep(track_name, step, index, progress.last_at + step.wait)
    return None


def condition_met(condition: Condition | None, progress: Progress) -> bool:
    """Does the lead's engagement so far allow this step? No condition: always."""
    if condition is None:
        return True
    negated = condition.event.startswith("not_")
    event = condition.event.removeprefix("not_")
    steps = {condition.step} if condition.step else set(progress.sent)
    happened = any((step, event) in progress.engaged for step in steps)
    return happened != negated
