"""`drip scoring review` on hand-built feedback: 24 hand-backs whose numbers are worked out by hand
below, a sample too small to claim anything, and the pure pieces (bands, the threshold rule).
Real rows (lead, handoff with its evidence, feedback) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from dripengine.config import load_settings
from dripengine.scoring.review import (
    TOO_FEW,
    HandBack,
    ThresholdRow,
    band_label,
    best_threshold,
    review,
    sweep,
)
from dripengine.scoring.review_queries import load_counts, load_handbacks
from dripengine.storage.engine import make_engine, session_scope
from dripengine.storage.models import Feedback, Handoff, Lead
from tests.clirun import NOW, drip

NOW_AT = datetime.fromisoformat(NOW)
ACCEPTED_EVIDENCE = [("click", "pricing"), ("reply", None)]
REJECTED_EVIDENCE = [("open", None), ("click", "guide")]


def add_handback(
    engine: Engine,
    email: str,
    score: float,
    fit: str,
    outcomes: list[str],
    *,
    at: datetime,
    campaign: str = "lost-sql-winback",
    reason: str = "no_budget",
    evidence: list[tuple[str, str | None]] | None = None,
) -> None:
    """A lead handed back with ``score`` and ``fit``, then the feedback ``outcomes`` a day apart."""
    if evidence is None:
        evidence = ACCEPTED_EVIDENCE if outcomes[0] != "rejected" else REJECTED_EVIDENCE
    with session_scope(engine) as session:
        lead = Lead(email=email, stage="mql", created_at=at, updated_at=at)
        session.add(lead)
        session.flush()
        assert lead.id is not None
        handoff = Handoff(
            lead_id=lead.id,
            campaign_id=campaign,
            score=score,
            fit_grade=fit,
            payload={
                "recycle": {"reason": reason},
                "evidence": [
                    {"type": kind, "at": at.isoformat(), "points": 5, "tag": tag}
                    for kind, tag in evidence
                ],
            },
            created_at=at,
        )
        session.add(handoff)
        session.flush()
        for day, outcome in enumerate(outcomes, start=1):
            session.add(
                Feedback(
                    lead_id=lead.id,
                    handoff_id=handoff.id,
                    outcome=outcome,
                    reason="no_budget" if outcome == "rejected" else None,
                    campaign_id=campaign,
                    recycle_reason=reason,
                    score_at_handoff=score,
                    fit_at_handoff=fit,
                    at=at + timedelta(days=day),
                )
            )


# (score, fit, outcomes): 24 hand-backs; accepted = accepted, won or lost
DATASET: list[tuple[float, str, list[str]]] = [
    # 60-69: 8, two accepted (the two lowest), six rejected
    (60, "A", ["accepted"]),
    (61, "A", ["accepted", "won"]),
    (62, "C", ["rejected"]),
    (63, "C", ["rejected"]),
    (64, "C", ["rejected"]),
    (65, "C", ["rejected"]),
    (66, "C", ["rejected"]),
    (69.5, "C", ["rejected"]),
    # 70-79: 8, six accepted (one won), two rejected (71, 75)
    (70, "B", ["accepted", "won"]),
    (71, "B", ["rejected"]),
    (72, "B", ["accepted"]),
    (73, "B", ["accepted"]),
    (74, "B", ["accepted"]),
    (75, "B", ["rejected"]),
    (76, "B", ["accepted"]),
    (78, "B", ["accepted"]),
    # 80-89: 5, one rejected (84), one won, one lost; 90+: 3 accepted, one won
    (80, "A", ["accepted", "won"]),
    (82, "A", ["accepted", "lost"]),
    (84, "A", ["rejected"]),
    (85, "A", ["accepted"]),
    (88, "A", ["accepted"]),
    (90, "A", ["won"]),
    (92, "A", ["accepted"]),
    (95, "A", ["accepted"]),
]


def build(engine: Engine, dataset: list[tuple[float, str, list[str]]] = DATASET) -> None:
    start = NOW_AT - timedelta(days=60)
    for i, (score, fit, outcomes) in enumerate(dataset):
        add_handback(
            engine,
            f"lead{i:02d}@acme.example",
            score,
            fit,
            outcomes,
            at=start + timedelta(days=i),
            campaign="lost-sql-winback" if i % 2 else "rejected-mql-nurture",
            reason="bad_timing" if i % 3 == 0 else "no_budget",
        )
    # outside a 90-day window: not counted
    add_handback(engine, "old@acme.example", 99, "A", ["rejected"], at=NOW_AT - timedelta(days=200))


def _review(engine: Engine, days: int = 90) -> Any:
    since = NOW_AT - timedelta(days=days)
    with engine.connect() as connection:
        counts = load_counts(connection, since)
        handbacks = load_handbacks(connection, since)
    return review(counts, handbacks, since=since, now=NOW_AT, sla_threshold=60)


def _groups(result: Any, grouping: str) -> dict[str, tuple[int, int, int, int, float | None]]:
    return {
        r.key: (r.handed, r.accepted, r.rejected, r.won, r.rate)
        for r in result.groups
        if r.grouping == grouping
    }


def test_the_numbers_on_a_hand_built_dataset(engine: Engine) -> None:
    build(engine)
    result = _review(engine)
    assert (result.total, result.enough) == (24, True)
    assert _groups(result, "overall") == {"all": (24, 15, 9, 4, 15 / 24)}
    bands = _groups(result, "score band")
    assert list(bands) == ["60-69", "70-79", "80-89", "90+"]  # lowest first
    assert bands["60-69"] == (8, 2, 6, 1, 0.25)
    assert bands["70-79"] == (8, 6, 2, 1, 0.75)
    assert bands["80-89"] == (5, 4, 1, 1, 0.8)
    assert bands["90+"] == (3, 3, 0, 1, None)  # 3 < 5: counts only
    assert next(r for r in result.groups if r.key == "90+").note == TOO_FEW
    assert _groups(result, "fit grade") == {
        "A": (10, 9, 1, 3, 0.9),
        "B": (8, 6, 2, 1, 0.75),
        "C": (6, 0, 6, 0, 0.0),
    }
    assert sum(g[0] for g in _groups(result, "campaign").values()) == 24
    reasons = _groups(result, "recycle reason")
    assert (reasons["bad_timing"][0], reasons["no_budget"][0]) == (8, 16)
    # the sweep: as handed back, 15 accepted - 9 rejected = 6; from 70: 13 - 3 = 10 (72 ties
    # at 12 - 2 = 10: the lower one keeps more volume)
    assert result.current == ThresholdRow(60, 24, 15, 9, 15 / 24)
    assert result.best == ThresholdRow(70, 16, 13, 3, 13 / 16)
    by_t = {t.threshold: t.net for t in result.sweep}
    assert (by_t[69], by_t[71], by_t[72], by_t[85]) == (9, 9, 10, 5)
    advice = " ".join(result.advice())
    assert "15 of 24 hand-backs accepted (62%)" in advice
    assert (
        "A score threshold of 70 would have handed back 16 instead of 24 (8 fewer, 2 of them"
        in (advice)
    )
    signals = {(s.kind, s.name): s for s in result.signals}
    pricing = signals[("tag", "pricing")]
    assert (pricing.accepted_with, pricing.rejected_with, pricing.rate) == (15, 0, 1.0)
    guide = signals[("tag", "guide")]
    assert (guide.accepted_with, guide.rejected_with, guide.rate) == (0, 9, 0.0)
    assert signals[("event", "reply")].share_of_accepted == 1.0
    assert signals[("event", "open")].share_of_rejected == 1.0


def test_too_few_makes_no_claim(engine: Engine) -> None:
    build(engine, DATASET[:6])
    result = _review(engine)
    assert (result.total, result.enough) == (6, False)
    assert all(r.rate is None and r.note == TOO_FEW for r in result.groups)
    assert _groups(result, "overall")["all"][:3] == (6, 2, 4)
    assert (result.best, result.sweep, result.signals) == (None, [], [])
    assert result.advice() == [
        "6 hand-back(s) with feedback: too few to say (a claim needs at least 20); the counts "
        "are shown as they are."
    ]


def test_drip_scoring_review_prints_table_json_csv(folder: Path) -> None:
    engine = make_engine(load_settings(str(folder / "drip.toml")).database_url)
    try:
        build(engine)
    finally:
        engine.dispose()
    code, out, err = drip("scoring", "review", "--since", "90d")
    assert code == 0, err
    assert "24 hand-back(s) with feedback since 2026-08-25" in out
    assert "A score threshold of 70 would have handed back 16 instead of 24" in out
    assert "too few to say" in out  # the 90+ band
    code, out, _ = drip("scoring", "review", "--since", "90d", "--format", "json")
    data = json.loads(out)
    assert data["hand_backs"] == 24 and data["threshold"]["best"]["threshold"] == 70
    code, out, _ = drip("scoring", "review", "--since", "2026-01-01", "--format", "csv")
    lines = out.splitlines()
    assert lines[0] == "section,key,handed,accepted,rejected,won,rate,precision,note"
    assert "overall,all,25,15,10,4,0.6,," in lines  # the old rejection counts from January
    assert any(line.startswith("threshold (best),70,17,13,4,") for line in lines)
    code, _, err = drip("scoring", "review", "--since", "soon")
    assert code == 1 and err.startswith('Error: --since: "soon" is not')


def test_bands_and_the_threshold_rule() -> None:
    assert [band_label(s) for s in (None, 12, 49.9, 50, 59.99, 60, 89.9, 90, 250)] == [
        "unknown",
        "<50",
        "<50",
        "50-59",
        "50-59",
        "60-69",
        "80-89",
        "90+",
        "90+",
    ]
    handbacks = [
        HandBack(61.7, "A", True),
        HandBack(65, "A", False),
        HandBack(70, "A", True),
        HandBack(None, None, True),  # no score: counted in the groups, not in the sweep
    ]
    rows = sweep(handbacks)
    assert [(r.threshold, r.handed, r.accepted, r.net) for r in rows] == [
        (61, 3, 2, 1),
        (65, 2, 1, 0),
        (70, 1, 1, 1),
    ]
    assert best_threshold(rows) == rows[0]  # a tie keeps the lower threshold
    assert best_threshold([]) is None
