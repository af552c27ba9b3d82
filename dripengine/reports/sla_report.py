"""The report's SLA section: the clocks of the hand-backs made in the window, breached or not,
counted by week (the Monday, UTC, of the week each clock was due) and by the reason the lead had
been recycled for before it was handed back. Pure over the rows of
:func:`dripengine.storage.sla.handbacks`; a breach is a clock that ran past its due time, still
open or stopped late (:mod:`dripengine.funnel.sla_breaches`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dripengine.funnel.sla import SLA
from dripengine.funnel.sla_breaches import clocks
from dripengine.storage import Engine
from dripengine.storage.sla import handbacks

__all__ = ["SlaCount", "SlaSummary", "collect_sla", "summarise"]

NO_REASON = "(none)"


@dataclass
class SlaCount:
    key: str
    handbacks: int = 0
    first_touch: int = 0  # breaches of each clock
    decision: int = 0
    open: int = 0  # of those, still overdue at the time of the report


@dataclass(frozen=True)
class SlaSummary:
    commitments: str  # "24 working hours to first touch, 10 working days to a decision"
    handbacks: int
    weeks: list[SlaCount] = field(default_factory=list)
    reasons: list[SlaCount] = field(default_factory=list)

    @property
    def breaches(self) -> int:
        return sum(row.first_touch + row.decision for row in self.weeks)


def summarise(rows: Iterable[Mapping[str, Any]], sla: SLA, now: datetime) -> SlaSummary:
    weeks: dict[str, SlaCount] = {}
    reasons: dict[str, SlaCount] = {}
    total = 0
    for row in rows:
        total += 1
        states = clocks(row, sla)
        reason = next((s.reason for s in states if s.reason), None) or NO_REASON
        by_reason = reasons.setdefault(reason, SlaCount(reason))
        by_reason.handbacks += 1
        for state in states:
            if not state.breached(now):
                continue
            due = state.due_at
            monday = (due - timedelta(days=due.weekday())).strftime("%Y-%m-%d")
            for count in (weeks.setdefault(monday, SlaCount(monday)), by_reason):
                setattr(count, state.clock, getattr(count, state.clock) + 1)
                count.open += state.stopped_at is None
    c = sla.sales_commitments
    said = []
    if c.first_touch_hours is not None:
        said.append(f"{c.first_touch_hours} working hours to first touch")
    if c.decision_days is not None:
        said.append(f"{c.decision_days} working days to a decision")
    return SlaSummary(
        ", ".join(said) + f" ({sla.working_time.timezone})",
        total,
        sorted(weeks.values(), key=lambda w: w.key),
        sorted(reasons.values(), key=lambda r: (-(r.first_touch + r.decision), r.key)),
    )


def collect_sla(
    engine: Engine, sla: SLA, since: datetime | None, now: datetime, campaign: str | None
) -> SlaSummary | None:
    """The section for the hand-backs made since ``since``; None when the SLA sets no clock."""
    c = sla.sales_commitments
    if c.first_touch_hours is None and c.decision_days is None:
        return None
    with engine.connect() as connection:
        rows = handbacks(connection, now, since=since)
    if campaign is not None:
        rows = [row for row in rows if row["campaign_id"] == campaign]
    return summarise(rows, sla, now)
