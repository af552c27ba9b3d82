"""The scoring step of an ingest: each new event's points on its lead, with the day's caps.

The rules are :mod:`dripengine.scoring.rules` (points per event and link tag, machine events at 0,
daily caps, lazy half-life decay); this applies them to a batch: the points already earned on the
batch's days are read once (:meth:`Rescore.load_earned`), every event rescores its lead in memory,
and the ScoreChange rows go in as one executemany (:meth:`Rescore.flush`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dripengine.engagement.matching import Matched
from dripengine.scoring.rules import ScoringRules, add, decayed
from dripengine.storage import Connection
from dripengine.storage import events as store

_Earned = dict[tuple[int, str, datetime], float]  # (lead, event type, UTC day) -> points


class Rescore:
    """Scores one batch's events on their leads (dicts as :func:`store.event_leads` reads them)."""

    def __init__(self, connection: Connection, rules: ScoringRules) -> None:
        self.connection = connection
        self.rules = rules
        self.earned: _Earned = defaultdict(float)
        self.changes: list[dict[str, Any]] = []

    def load_earned(self, lead_ids: Sequence[int], times: Sequence[datetime]) -> None:
        """Points already earned per (lead, event type, UTC day) on the days of this batch."""
        capped = set(self.rules.daily_caps)
        if not capped:
            return
        start = day(min(times))
        end = day(max(times)) + timedelta(days=1)
        rows = store.points_earned(self.connection, lead_ids, sorted(capped), start, end)
        for lead_id, kind, at, delta in rows:
            self.earned[(lead_id, kind, day(at))] += delta

    def score(self, event_id: int, m: Matched, lead: dict[str, Any]) -> bool:
        """Rescore ``lead`` for one event; True when its score went up."""
        e = m.event
        if lead["scoring_stopped_at"] is not None:  # an objection (GDPR Art. 21): no profiling
            return False
        points = self.rules.points(e.type, tag=e.tag, machine=e.machine)
        if points == 0:
            return False
        day_key = (lead["id"], e.type, day(e.occurred_at))
        allowed = self.rules.cap(e.type, points, self.earned[day_key])
        if allowed == 0:
            return False
        self.earned[day_key] += allowed
        at = max(e.occurred_at, lead["score_updated_at"] or e.occurred_at)
        before = decayed(lead["score"], lead["score_updated_at"], at, self.rules.half_life_days)
        after = add(lead["score"], lead["score_updated_at"], at, allowed, self.rules)
        lead.update(score=after, score_updated_at=at, _dirty=True)
        self.changes.append(
            {
                "lead_id": lead["id"],
                "event_id": event_id,
                "delta": after - before,
                "score_after": after,
                "reason": reason(m, allowed, points)[:200],
                "at": at,
            }
        )
        return after > before

    def flush(self) -> None:
        """The ScoreChange rows of the batch so far, one executemany."""
        if self.changes:
            store.insert_score_changes(self.connection, self.changes)


def reason(m: Matched, allowed: float, points: float) -> str:
    """What earned the points, as the ScoreChange row says it."""
    e = m.event
    what = e.type + (f" [{e.tag}]" if e.tag else "")
    if m.message is not None:
        what += f" in {m.message['campaign_id']}/{m.message['step_id']}"
    elif e.provider == "api":
        what += " (API)"
    if allowed < points:
        what += f" (daily cap: {allowed:g} of {points:g})"
    return what


def day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


__all__ = ["Rescore", "day", "reason"]
