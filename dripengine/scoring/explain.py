"""``drip scoring explain``: why a lead's score is what it is, and what stands between it and sales.

Pure. Decay is a half-life applied to the whole stored score, and it is linear: a score made of
changes decays as the sum of each change decayed on its own. So each ScoreChange since the last
time the score started from zero (a reset on recycle, or a score pulled down to 0) contributes
``delta * 0.5 ** (age / half_life)`` now, and those contributions add up to the decayed stored
score. Changes before that point are listed as no longer counting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dripengine.scoring.rules import Fit, decayed, fit_at_least

EPSILON = 0.01  # points: below this, two scores are the same score


@dataclass(frozen=True)
class Change:
    """One ScoreChange row, with the event that caused it (if any)."""

    at: datetime
    delta: float
    score_after: float
    reason: str
    event_type: str | None = None
    machine: bool = False


@dataclass(frozen=True)
class Line:
    at: datetime
    event_type: str | None
    reason: str
    points: float  # when it happened
    now: float  # what is left of it now
    counts: bool  # False: before the score last started again from zero


@dataclass(frozen=True)
class Explanation:
    score: float  # now, decayed
    lines: list[Line]
    carried: float  # what is left now of a score that did not start from zero in the history
    unexplained: float  # score - carried - the lines that count (history rows missing or clamped)
    half_life_days: float
    fit: Fit
    min_fit: str
    fit_ok: bool
    threshold: float
    gap: float  # points still missing to the threshold (0: reached)
    may_requalify: bool  # the lead's recycle reason allows a way back
    scoring_stopped_at: datetime | None

    @property
    def ready(self) -> bool:
        return self.may_requalify and self.fit_ok and self.gap <= 0


def factor(at: datetime, now: datetime, half_life_days: float) -> float:
    """What share of a score made at ``at`` is left at ``now``."""
    if now <= at or half_life_days <= 0:
        return 1.0
    return math.pow(0.5, (now - at).total_seconds() / 86_400 / half_life_days)


def explain(
    changes: Sequence[Change],
    *,
    stored: float,
    stored_at: datetime | None,
    now: datetime,
    half_life_days: float,
    fit: Fit,
    min_fit: str,
    threshold: float,
    may_requalify: bool = True,
    scoring_stopped_at: datetime | None = None,
) -> Explanation:
    """The explanation at ``now`` of a lead whose stored score is ``stored`` (as of ``stored_at``)
    with its ScoreChange history ``changes`` (any order)."""
    ordered = sorted(changes, key=lambda c: c.at)
    start = _last_fresh_start(ordered, half_life_days)
    score = decayed(stored, stored_at, now, half_life_days)
    carried = 0.0
    if start is not None and start < len(ordered):
        base = ordered[start]
        carried = (base.score_after - base.delta) * factor(base.at, now, half_life_days)
    lines = []
    for index, change in enumerate(ordered):
        counts = start is None or index >= start
        left = change.delta * factor(change.at, now, half_life_days) if counts else 0.0
        lines.append(Line(change.at, change.event_type, change.reason, change.delta, left, counts))
    unexplained = score - carried - sum(line.now for line in lines)
    return Explanation(
        score=score,
        lines=lines,
        carried=carried,
        unexplained=unexplained if abs(unexplained) >= EPSILON else 0.0,
        half_life_days=half_life_days,
        fit=fit,
        min_fit=min_fit,
        fit_ok=fit_at_least(fit.grade, min_fit),
        threshold=threshold,
        gap=max(threshold - score, 0.0),
        may_requalify=may_requalify,
        scoring_stopped_at=scoring_stopped_at,
    )


def _last_fresh_start(ordered: Sequence[Change], half_life_days: float) -> int | None:
    """The index of the first change that counts now: the one after the score last stood at zero,
    or the one where the history does not add up (a row missing): None when all of them count."""
    start: int | None = None
    before: Change | None = None
    for index, change in enumerate(ordered):
        previous = 0.0 if before is None else before.score_after
        expected = previous * (factor(before.at, change.at, half_life_days) if before else 1.0)
        if change.score_after <= EPSILON:
            start = index + 1
        elif abs(expected + change.delta - change.score_after) > EPSILON:
            start = index  # counts, carrying what the history does not show
        before = change
    return start


__all__ = ["Change", "Explanation", "Line", "explain", "factor"]
