"""The SLA's two clocks on each hand-back, and the breaches among them. Pure.

Both start when dripengine hands the lead back (the Handoff row's time):

- ``first_touch``: due ``first_touch_hours`` working hours later; stopped by the first sales touch
  (a call, email or meeting the CRM reported) or the first word from sales (feedback) after it.
- ``decision``: due ``decision_days`` working days later; stopped by the first word from sales
  (feedback of any outcome).

A recycle of the lead after the hand-back stops both (sales gave it back with a reason through
``drip recycle`` or the API, or the SLA renurtured it): the hand-back is over. Each hand-back
has its own clocks: a lead requalified twice has two pairs.

A clock is **breached** when it ran past its due time: it stopped after it, or it still runs
(``open``) and ``now`` is past it. ``overdue_hours`` counts **working hours** from the due time
to the stop (or ``now``): a clock that passed at 17:00 on Friday is 0 working hours overdue until
Monday 09:00 (docs/sla.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dripengine.funnel.sla import SLA
from dripengine.funnel.sla_clock import add_days, add_hours, hours_between

__all__ = ["CLOCKS", "Breach", "ClockState", "breaches", "clocks", "owner_of"]

CLOCKS = ("first_touch", "decision")


@dataclass(frozen=True)
class ClockState:
    handoff_id: int
    handoff_uid: str
    lead_id: int
    email: str
    owner: str | None
    reason: str | None  # why the lead had been recycled before it was handed back
    handed_back_at: datetime
    clock: str  # first_touch | decision
    due_at: datetime
    stopped_at: datetime | None  # None: still running at ``now``
    stopped_by: str | None  # touch | feedback | recycle
    alerted: bool  # an sla_alert row exists for this hand-back and clock

    def passed(self, now: datetime) -> bool:
        """Past due with no stop by then (what a reminder is for)."""
        return self.stopped_at is None and now > self.due_at

    def breached(self, now: datetime) -> bool:
        return (self.stopped_at or now) > self.due_at


@dataclass(frozen=True)
class Breach:
    state: ClockState
    overdue_hours: float  # working hours, one decimal

    def as_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "email": s.email,
            "owner": s.owner,
            "handed_back_at": s.handed_back_at,
            "reason": s.reason,
            "clock": s.clock,
            "due_at": s.due_at,
            "overdue_hours": self.overdue_hours,
            "stopped_at": s.stopped_at,
            "stopped_by": s.stopped_by,
            "handoff_id": s.handoff_uid,
        }


def owner_of(row: Mapping[str, Any]) -> str | None:
    """The rep the CRM told us: the actor of the latest sales touch or feedback, else the lead's
    ``owner`` attribute; None when unknown."""
    named = [
        (row[f"{kind}_actor_at"], row[f"{kind}_actor"])
        for kind in ("touch", "word")
        if row.get(f"{kind}_actor")
    ]
    if named:
        return str(max(named, key=lambda item: item[0])[1])
    owner = (row.get("attributes") or {}).get("owner")
    return str(owner) if owner not in (None, "") else None


def _first(*moments: tuple[datetime | None, str]) -> tuple[datetime | None, str | None]:
    present = [(at, why) for at, why in moments if at is not None]
    return min(present, key=lambda item: item[0]) if present else (None, None)


def clocks(row: Mapping[str, Any], sla: SLA) -> list[ClockState]:
    """The clocks of one hand-back (a row of :func:`dripengine.storage.sla.handbacks`) the SLA
    commits to; none when it sets neither number."""
    commitments, working = sla.sales_commitments, sla.clock
    start: datetime = row["created_at"]
    recycle = ((row.get("payload") or {}).get("recycle")) or {}
    reason = recycle.get("reason") if isinstance(recycle, dict) else None
    common = {
        "handoff_id": row["id"],
        "handoff_uid": row["uid"],
        "lead_id": row["lead_id"],
        "email": row["email"],
        "owner": owner_of(row),
        "reason": reason if isinstance(reason, str) else None,
        "handed_back_at": start,
    }
    word, recycled = (row["word_at"], "feedback"), (row["recycled_at"], "recycle")
    out = []
    if commitments.first_touch_hours is not None:
        stopped, by = _first((row["touched_at"], "touch"), word, recycled)
        out.append(
            ClockState(
                **common,
                clock="first_touch",
                due_at=add_hours(working, start, commitments.first_touch_hours),
                stopped_at=stopped,
                stopped_by=by,
                alerted=bool(row.get("alerted_first_touch")),
            )
        )
    if commitments.decision_days is not None:
        stopped, by = _first(word, recycled)
        out.append(
            ClockState(
                **common,
                clock="decision",
                due_at=add_days(working, start, commitments.decision_days),
                stopped_at=stopped,
                stopped_by=by,
                alerted=bool(row.get("alerted_decision")),
            )
        )
    return out


def breaches(
    rows: Iterable[Mapping[str, Any]], sla: SLA, now: datetime, *, resolved: bool = False
) -> list[Breach]:
    """The breached clocks of ``rows`` at ``now``: those still overdue, and with ``resolved``
    also those stopped late; most overdue first."""
    out = []
    for row in rows:
        for state in clocks(row, sla):
            if not state.breached(now) or (state.stopped_at is not None and not resolved):
                continue
            late = hours_between(sla.clock, state.due_at, state.stopped_at or now)
            out.append(Breach(state, round(late, 1)))
    out.sort(key=lambda b: (-b.overdue_hours, b.state.due_at, b.state.email, b.state.clock))
    return out
