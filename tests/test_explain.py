"""``drip scoring explain``'s arithmetic: contributions that add up to the decayed score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.scoring.explain import Change, explain, factor
from dripengine.scoring.rules import Fit, ScoringRules, add, decayed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HALF = 45.0
FIT_B = Fit("B", 65, ("industry",), ())


def history(events: list[tuple[datetime, float]]) -> tuple[list[Change], float, datetime | None]:
    """ScoreChange rows as scoring.add stores them, and the final stored score and its time."""
    rules = ScoringRules(half_life_days=HALF)
    score, since, changes = 0.0, None, []
    for at, points in events:
        score = add(score, since, at, points, rules)
        since = at
        changes.append(Change(at, points, score, f"+{points:g}", "click"))
    return changes, score, since


def run(changes: list[Change], stored: float, at: datetime | None, **kw: object):
    params = {"fit": FIT_B, "min_fit": "B", "threshold": 60.0, **kw}
    return explain(changes, stored=stored, stored_at=at, now=NOW, half_life_days=HALF, **params)  # type: ignore[arg-type]


def test_each_change_decays_on_its_own_and_they_add_up() -> None:
    changes, stored, at = history(
        [(NOW - timedelta(days=90), 20), (NOW - timedelta(days=45), 25), (NOW, 5)]
    )
    why = run(changes, stored, at)
    assert [round(line.now, 6) for line in why.lines] == [5.0, 12.5, 5.0]
    assert why.score == pytest.approx(22.5) and why.carried == 0 and why.unexplained == 0
    assert why.gap == pytest.approx(37.5) and why.fit_ok and not why.ready


def test_a_reset_on_recycle_leaves_the_earlier_changes_out() -> None:
    changes, stored, _at = history([(NOW - timedelta(days=10), 40)])
    reset_at = NOW - timedelta(days=5)
    changes.append(Change(reset_at, -stored, 0.0, "reset on recycle (kept in history)"))
    changes.append(Change(NOW - timedelta(days=1), 30, 30.0, "reply", "reply"))
    why = run(changes, 30.0, NOW - timedelta(days=1))
    assert [line.counts for line in why.lines] == [False, False, True]
    assert why.lines[0].now == 0 and why.lines[2].now == pytest.approx(why.score)
    assert why.unexplained == 0


def test_a_history_that_does_not_add_up_is_carried_not_hidden() -> None:
    start = NOW - timedelta(days=45)
    # a row is missing: the score stood at 50 before this +10, though no row says so
    changes = [Change(start, 10, 60.0, "click", "click")]
    why = run(changes, 60.0, start, threshold=20.0)
    assert why.carried == pytest.approx(25.0) and why.lines[0].now == pytest.approx(5.0)
    assert why.score == pytest.approx(30.0) and why.gap == 0 and why.ready


def test_fit_below_the_minimum_and_a_reason_that_never_requalifies() -> None:
    why = run([], 0.0, None, fit=Fit("C", 45, ("company", "role"), ()), may_requalify=False)
    assert not why.fit_ok and not why.ready and why.gap == 60.0 and why.lines == []


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=40)),
        max_size=20,
    )
)
def test_contributions_always_sum_to_the_decayed_score(raw: list[tuple[int, int]]) -> None:
    events = sorted((NOW - timedelta(days=d), float(p)) for d, p in raw)
    changes, stored, at = history(events)
    why = run(changes, stored, at)
    assert why.unexplained == 0
    assert sum(line.now for line in why.lines) + why.carried == pytest.approx(
        decayed(stored, at, NOW, HALF), abs=0.02
    )


def test_factor_halves_every_half_life() -> None:
    assert factor(NOW - timedelta(days=HALF), NOW, HALF) == pytest.approx(0.5)
    assert factor(NOW + timedelta(days=1), NOW, HALF) == 1.0
