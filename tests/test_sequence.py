from datetime import UTC, datetime, timedelta
from typing import Any

from dripengine.campaigns import Campaign
from dripengine.campaigns.sequence import Progress, condition_met, next_step

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
