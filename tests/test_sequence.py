from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.campaigns import Campaign
from dripengine.scoring import ScoringRules, add, decayed, requalifies
from dripengine.sequence import Progress, condition_met, next_step

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def make(exit: dict[str, Any] | None = None, **tracks: Any) -> Campaign:
    data: dict[str, Any] = {
        "id": "c",
        "name": "C",
        "audience": {"stages": ["sql"]},
        "send": {"from": "a@acme.example"},
        "tracks": tracks,
    }
    if exit is not None:
        data["exit"] = exit
    return Campaign.model_validate(data)


def step(sid: str, wait: str = "1d", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "wait": wait, "template": f"t/{sid}.mjml", "subject": sid, **extra}


CAMPAIGN = make(
    cold={
        "min_score": 0,
        "steps": [
            step("c1"),
            step("c2", "2d", condition={"event": "opened", "step": "c1"}),
            step("c3", "3d"),
        ],
    },
    warm={"min_score": 30, "steps": [step("w1", "2h"), step("w2")]},
)


def test_first_step_and_its_wait() -> None:
    nxt = next_step(CAMPAIGN, 0, Progress(last_at=T0))
    assert nxt is not None
    assert (nxt.track, nxt.step.id, nxt.index, nxt.earliest) == (
        "cold",
        "c1",
        0,
        T0 + timedelta(days=1),
    )


def test_score_picks_the_track_and_each_track_keeps_its_place() -> None:
    progress = Progress(last_at=T0).after("c1", T0, sent=True)
    warm = next_step(CAMPAIGN, 45, progress)
    assert warm is not None and (warm.track, warm.step.id) == ("warm", "w1")
    progress = progress.after("w1", T0 + timedelta(hours=2), sent=True)
    cooled = next_step(CAMPAIGN, 10, progress)
    assert cooled is not None and cooled.step.id == "c2"
    assert cooled.earliest == T0 + timedelta(hours=2) + timedelta(days=2)


def test_round_complete_when_track_has_no_steps_left() -> None:
    progress = Progress(last_at=T0)
    for sid in ("c1", "c2", "c3"):
        progress = progress.after(sid, T0, sent=True)
    assert next_step(CAMPAIGN, 0, progress) is None
    assert next_step(CAMPAIGN, 30, progress) is not None  # the warm track still has steps


def test_conditions() -> None:
    cond = CAMPAIGN.step("c2").condition
    progress = Progress(last_at=T0).after("c1", T0, sent=True)
    assert not condition_met(cond, progress)
    assert condition_met(cond, progress.with_engagement([("c1", "opened")]))
    assert not condition_met(cond, progress.with_engagement([("other", "opened")]))
    assert condition_met(None, progress)
    anything = make(
        cold={"min_score": 0, "steps": [step("a"), step("b", condition={"event": "not_clicked"})]}
    )
    cond_b = anything.step("b").condition
    sent_a = Progress(last_at=T0).after("a", T0, sent=True)
    assert condition_met(cond_b, sent_a)
    assert not condition_met(cond_b, sent_a.with_engagement([("a", "clicked")]))


def test_points_and_machine_events() -> None:
    rules = ScoringRules()
    assert rules.points("click", tag="pricing") == 20
    assert rules.points("click", tag="pricing", machine=True) == 0
    assert rules.points("open") == 1
    assert rules.points("unknown_event") == 0


def test_decay_halves_per_half_life() -> None:
    assert decayed(80, T0, T0 + timedelta(days=45), 45) == pytest.approx(40)
    assert decayed(80, T0, T0 - timedelta(days=1), 45) == 80
    assert add(80, T0, T0 + timedelta(days=90), 10, ScoringRules()) == pytest.approx(30)


@given(
    score=st.floats(min_value=0, max_value=1e6),
    days=st.floats(min_value=0, max_value=3650),
    half_life=st.floats(min_value=0.1, max_value=1000),
)
def test_decay_never_raises_a_score(score: float, days: float, half_life: float) -> None:
    assert decayed(score, T0, T0 + timedelta(days=days), half_life) <= score


def test_requalification_rule() -> None:
    assert requalifies(60, 60, reason_may_requalify=True)
    assert not requalifies(59.9, 60, reason_may_requalify=True)
    assert not requalifies(99, 60, reason_may_requalify=False)
