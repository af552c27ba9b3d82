"""Behaviour scoring and fit: points per engagement, daily caps, lazy decay, the fit grade, the
requalification decision. Pure.

A score is stored with the time it was computed; its current value is decayed on read with a
half-life, so no nightly job rewrites every lead. Machine events (privacy-proxy opens, link-scanner
clicks) are kept but weigh nothing. Rules come from ``[scoring]`` in drip.toml
(:func:`rules_from_settings`); the fit grade (A-D) from how complete the profile is and the
attribute rules (:func:`fit_grade`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dripengine.config import FitRule, ScoringSettings

DEFAULT_EVENT_POINTS: Mapping[str, float] = {
    "open": 1,  # weighs little: Apple Mail Privacy Protection opens for a third of recipients
    "click": 5,
    "reply": 25,
    "auto_reply": 0,
    "unverified_reply": 0,  # no aligned SPF or DKIM pass, or over the spam score: maybe forged
    "site_visit": 3,
    "form_fill": 15,
    "demo_request": 30,
}
# points a UTC day per event type at most (Marketo-style): a lead that opens one email 40 times,
# or whose browser reloads a page, does not become an MQL by that alone
DEFAULT_DAILY_CAPS: Mapping[str, float] = {"open": 3, "click": 40, "site_visit": 9}
# a click this soon after delivery is a security gateway following links, not a person
DEFAULT_SCANNER_SECONDS = 10.0
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
    daily_caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DAILY_CAPS))
    scanner_seconds: float = DEFAULT_SCANNER_SECONDS

    def cap(self, event: str, points: float, earned_today: float) -> float:
        """``points`` cut so that the day's total for ``event`` stays within its cap."""
        limit = self.daily_caps.get(event)
        if limit is None or points <= 0:
            return points
        return max(min(points, float(limit) - earned_today), 0.0)

    def is_scanner_click(self, clicked_at: datetime, delivered_at: datetime | None) -> bool:
        """A click within ``scanner_seconds`` of the email leaving us: a link scanner."""
        if delivered_at is None or self.scanner_seconds <= 0:
            return False
        return clicked_at - delivered_at < timedelta(seconds=self.scanner_seconds)

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


def rules_from_settings(settings: ScoringSettings) -> ScoringRules:
    """The rules of ``[scoring]``: its points and caps merged over the defaults."""
    return ScoringRules(
        event_points={**DEFAULT_EVENT_POINTS, **settings.event_points},
        tag_points={**DEFAULT_TAG_POINTS, **settings.tag_points},
        half_life_days=settings.half_life_days,
        daily_caps={**DEFAULT_DAILY_CAPS, **settings.daily_caps},
        scanner_seconds=settings.scanner_seconds,
    )


GRADES = ("A", "B", "C", "D")  # best first
GRADE_FLOORS = {"A": 80.0, "B": 60.0, "C": 40.0}  # fit points needed; below C: D

# What makes an MQL an SQL, as facts on the profile: who they are, the company, their role, the
# company's context, their challenges and needs. Each facet: its points, the fields that show it.
FIT_FACETS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("who they are", 10, ("first_name", "last_name")),
    ("company", 15, ("company",)),
    ("role", 15, ("title",)),
    ("industry", 10, ("industry",)),
    ("company size", 10, ("employees", "company_size")),
    ("challenges", 10, ("challenges", "pain_points")),
    ("needs", 10, ("needs", "use_case", "interest")),
)


@dataclass(frozen=True)
class Fit:
    grade: str
    points: float
    missing: tuple[str, ...]  # facets the profile lacks, for `drip scoring explain`
    matched: tuple[str, ...]  # attribute rules that gave points


def _value(lead: Mapping[str, Any], name: str) -> Any:
    value = lead.get(name)
    if value in (None, ""):
        attributes = lead.get("attributes") or {}
        value = attributes.get(name) if isinstance(attributes, Mapping) else None
    return None if value in (None, "") else value


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", "").replace("+", "").strip())
    except ValueError:
        return None


def _rule_matches(rule: FitRule, value: Any) -> bool:
    if value is None:
        return False
    text = str(value).strip().lower()
    if rule.values is not None and text not in {v.lower() for v in rule.values}:
        return False
    if rule.contains is not None and not any(c.lower() in text for c in rule.contains):
        return False
    if rule.min is not None:
        number = _number(value)
        if number is None or number < rule.min:
            return False
    return True


def fit_grade(lead: Mapping[str, Any], rules: Sequence[FitRule] = ()) -> Fit:
    """The lead's fit: facet points for a complete profile plus attribute rules, graded A-D."""
    points = 0.0
    missing: list[str] = []
    for facet, facet_points, fields in FIT_FACETS:
        if any(_value(lead, name) is not None for name in fields):
            points += facet_points
        else:
            missing.append(facet)
    matched: list[str] = []
    for rule in rules:
        if _rule_matches(rule, _value(lead, rule.field)):
            points += rule.points
            matched.append(f"{rule.field} ({rule.points:+g})")
    grade = next((g for g in GRADES[:-1] if points >= GRADE_FLOORS[g]), "D")
    return Fit(grade, points, tuple(missing), tuple(matched))


def fit_at_least(grade: str, minimum: str) -> bool:
    """``grade`` is ``minimum`` or better (A best)."""
    return GRADES.index(grade) <= GRADES.index(minimum)


def requalifies(
    score: float,
    threshold: float,
    *,
    reason_may_requalify: bool,
    fit: str | None = None,
    min_fit: str | None = None,
) -> bool:
    """True when a recycled lead is ready for sales again: the reason allows it, the score reaches
    the threshold and (when given) the fit grade is ``min_fit`` or better."""
    if fit is not None and min_fit is not None and not fit_at_least(fit, min_fit):
        return False
    return reason_may_requalify and score >= threshold
