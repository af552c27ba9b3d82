"""Behaviour scoring: points per engagement, lazy decay, the requalification decision. Pure.

A score is stored with the time it was computed; its current value is decayed on read with a
half-life, so no nightly job rewrites every lead. Machine events (privacy-proxy opens, link-scanner
clicks) are kept but weigh nothing. The engagement issue adds configurable rules, daily caps and
the fit grade on top of this core.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_EVENT_POINTS: Mapping[str, float] = {
    "open": 1,  # weighs little: Apple Mail Privacy Protection opens for a third of recipients
    "click": 5,
    "reply": 25,
    "auto_reply": 0,
    "site_visit": 3,
    "form_fill": 15,
    "demo_request": 30,
}
DEFAULT_TAG_POINTS: Mapping[str, float] = {
    "pricing": 15,
    "demo": 20,
    "case-study": 8,
    "roi": 10,
    "webinar": 8,
    "guide": 3,
}


@dataclass(frozen=True)
class ScoringRules:
    event_points: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_POINTS))
    tag_points: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TAG_POINTS))
    half_life_days: float = 45.0

    def points(self, event: str, *, tag: str | None = None, machine: bool = False) -> float:
        """Points for one event: its type's, plus its link tag's for a click; machines get 0."""
        if machine:
            return 0.0
        total = float(self.event_points.get(event, 0))
        if event == "click" and tag:
            total += float(self.tag_points.get(tag, 0))
        return total


def decayed(score: float, since: datetime | None, now: datetime, half_life_days: float) -> float:
    """``score`` computed at ``since``, as it stands at ``now``. Never raises a score."""
    if since is None or now <= since or score <= 0 or half_life_days <= 0:
        return score
    days = (now - since).total_seconds() / 86_400
    return score * math.pow(0.5, days / half_life_days)


def add(
    score: float, since: datetime | None, now: datetime, points: float, rules: ScoringRules
) -> float:
    """The new stored score (as of ``now``) after an event worth ``points``."""
    return max(decayed(score, since, now, rules.half_life_days) + points, 0.0)


def requalifies(score: float, threshold: float, *, reason_may_requalify: bool) -> bool:
    """True when a recycled lead is ready for sales again (fit grade: the engagement issue)."""
    return reason_may_requalify and score >= threshold
