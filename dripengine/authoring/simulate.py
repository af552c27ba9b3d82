"""``drip campaigns simulate``: a campaign's timeline for one lead under an assumed engagement.

It uses the daemon's own pieces (:mod:`dripengine.campaigns.sequence` for the next step and conditions,
:mod:`dripengine.campaigns.window` for the send window, :mod:`dripengine.scoring.rules` for the score) with
an injected start time. It sends nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dripengine.campaigns import WEEKDAYS, Campaign, Step
from dripengine.campaigns.sequence import CONDITION_FOR_EVENT, Progress, condition_met, next_step
from dripengine.campaigns.window import next_opening, resolve_timezone
from dripengine.scoring.rules import ScoringRules, add, decayed, requalifies

Pattern = Literal["none", "opens", "clicks", "reply"]
PATTERNS: tuple[str, ...] = ("none", "opens", "clicks", "reply")
OPEN_AFTER = timedelta(hours=3)
CLICK_AFTER = timedelta(hours=3, minutes=2)
REPLY_AFTER = timedelta(days=1)
MAX_STEPS = 200  # a campaign is finite; this only guards a broken one


@dataclass(frozen=True)
class SimLead:
    email: str
    score: float = 0.0
    timezone: str | None = None
    reason_may_requalify: bool = True
    recycle_count: int = 1


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # send | skip | open | click | reply | requalified | exit | complete
    track: str | None = None
    step: str | None = None
    template: str | None = None
    subject: str | None = None
    detail: str | None = None
    score: float | None = None


@dataclass
class Timeline:
    campaign: Campaign
    lead: SimLead
    timezone: ZoneInfo
    pattern: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.entries[-1].kind if self.entries else "complete"


def simulate(
    campaign: Campaign,
    lead: SimLead,
    *,
    start: datetime,
    pattern: Pattern,
    threshold: float,
    rules: ScoringRules | None = None,
    subject_for: Callable[[Step], str] = lambda step: step.subject,
    tags_for: Callable[[Step], Sequence[str]] = lambda step: (),
) -> Timeline:
    """Walk the campaign from ``start`` as the daemon would, assuming ``pattern`` engagement.

    ``subject_for`` renders a step's subject for this lead; ``tags_for`` gives the tags of the
    step's links (the first tagged link is the one "clicked").
    """
    rules = rules or ScoringRules()
    tz = resolve_timezone(lead.timezone, campaign.send.timezone)
    timeline = Timeline(campaign, lead, tz, pattern)
    progress = Progress(last_at=start)
    score, score_at = lead.score, start
    pending: list[Entry] = []  # engagement scheduled after a send, applied when its time comes
    deadline = (
        start + timedelta(days=campaign.exit.after_days) if campaign.exit.after_days else None
    )
    replied = False

    for _ in range(MAX_STEPS * 4):
        upcoming = next_step(campaign, score, progress)
        due = (
            next_opening(upcoming.earliest, campaign.send.window, tz, spread_key=lead.email)
            if upcoming
            else None
        )
        # Engagement that happens before the next send changes the score, and with it perhaps
        # the track: apply one event, then choose again (as the daemon would at that moment).
        if pending and (due is None or pending[0].at <= due):
            event = pending.pop(0)
            assert event.step is not None
            points = rules.points(event.kind, tag=event.detail)
            score = add(score, score_at, event.at, points, rules)
            score_at = event.at
            timeline.entries.append(
                Entry(event.at, event.kind, step=event.step, detail=event.detail, score=score)
            )
            progress = progress.with_engagement([(event.step, CONDITION_FOR_EVENT[event.kind])])
            if requalifies(score, threshold, reason_may_requalify=lead.reason_may_requalify):
                timeline.entries.append(
                    Entry(
                        event.at,
                        "requalified",
                        detail=f"score {score:.0f} ≥ {threshold:g}: handed back to sales",
                        score=score,
                    )
                )
                return timeline
            replied = replied or event.kind == "reply"
            if event.kind == "reply" and campaign.exit.exits_on("replied"):
                timeline.entries.append(
                    Entry(event.at, "exit", detail="replied: the conversation goes to a person")
                )
                return timeline
            continue
        if upcoming is None or due is None:
            timeline.entries.append(
                Entry(
                    max([progress.last_at, *(e.at for e in timeline.entries)]),
                    "complete",
                    detail="no steps left in the track",
                )
            )
            return timeline
        if deadline is not None and due > deadline:
            timeline.entries.append(
                Entry(
                    deadline,
                    "exit",
                    detail=f"campaign time limit ({campaign.exit.after_days} days)",
                )
            )
            return timeline
        now_score = decayed(score, score_at, due, rules.half_life_days)
        step = upcoming.step
        if not condition_met(step.condition, progress):
            assert step.condition is not None
            why = (
                f"condition {step.condition.event}"
                + (f" {step.condition.step}" if step.condition.step else "")
                + " not met"
            )
            timeline.entries.append(
                Entry(
                    due, "skip", upcoming.track, step.id, step.template, detail=why, score=now_score
                )
            )
            progress = progress.after(step.id, due, sent=False)
            continue
        timeline.entries.append(
            Entry(
                due,
                "send",
                upcoming.track,
                step.id,
                step.template,
                subject_for(step),
                score=now_score,
            )
        )
        progress = progress.after(step.id, due, sent=True)
        pending += _engagement(
            pattern,
            step,
            due,
            tags_for(step),
            replied_before=replied or any(e.kind == "reply" for e in pending),
        )
        pending.sort(key=lambda e: e.at)
    timeline.entries.append(
        Entry(progress.last_at, "exit", detail=f"stopped after {MAX_STEPS} steps")
    )
    return timeline


def _engagement(
    pattern: str, step: Step, sent_at: datetime, tags: Sequence[str], *, replied_before: bool
) -> list[Entry]:
    if pattern == "none":
        return []
    events = [Entry(sent_at + OPEN_AFTER, "open", step=step.id)]
    if pattern in ("clicks", "reply"):
        events.append(
            Entry(sent_at + CLICK_AFTER, "click", step=step.id, detail=tags[0] if tags else None)
        )
    if pattern == "reply" and not replied_before:
        events.append(Entry(sent_at + REPLY_AFTER, "reply", step=step.id))
    return events


def format_timeline(timeline: Timeline) -> list[str]:
    """Lines for a person: local time (the lead's zone), what happens, the score after it."""
    lines = [
        f'"{timeline.campaign.name}" for {timeline.lead.email}, engagement: {timeline.pattern}, '
        f"times in {timeline.timezone.key} (send window {_window(timeline.campaign)})"
    ]
    for entry in timeline.entries:
        when = entry.at.astimezone(timeline.timezone)
        stamp = f"{when:%a} {when.day:>2} {when:%b %H:%M}"
        score = f"  score {entry.score:.0f}" if entry.score is not None else ""
        if entry.kind == "send":
            lines.append(
                f'{stamp}  send  [{entry.track}] {entry.step}: "{entry.subject}" ({entry.template}){score}'
            )
        elif entry.kind == "skip":
            lines.append(f"{stamp}  skip  [{entry.track}] {entry.step}: {entry.detail}")
        elif entry.kind in ("open", "click", "reply"):
            tag = f" ({entry.detail})" if entry.detail else ""
            lines.append(f"{stamp}        {entry.kind} on {entry.step}{tag}{score}")
        else:
            lines.append(f"{stamp}  {entry.kind.upper()}: {entry.detail}")
    return lines


def _window(campaign: Campaign) -> str:
    window = campaign.send.window
    return f"{', '.join(WEEKDAYS[d].title() for d in window.days)} {window.start:%H:%M}-{window.end:%H:%M}"
