"""The requalification decision, pure (funnel.requalify): which recycled leads go back to sales.

The move itself (stage, history, enrollments exited, the Handoff row) is exercised through the
ingest path in tests/test_ingest.py and tests/test_handoff.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dripengine.cli.scaffold import SKELETON
from dripengine.funnel.requalify import Qualified, qualifies, reason_allows
from dripengine.funnel.sla import load_sla
from dripengine.scoring.rules import ScoringRules

SLA = load_sla(SKELETON / "sla.yaml")  # threshold 60 (75 recycled before), fit at least B
RULES = ScoringRules()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PROFILE = {
    "first_name": "Jane",
    "company": "Acme Corp",
    "title": "Head of Operations",
    "attributes": {
        "industry": "manufacturing",
        "employees": 450,
        "use_case": "x",
        "pain_points": "y",
    },
}


def lead(**changes: Any) -> dict[str, Any]:
    row = {
        "stage": "recycled",
        "score": 70.0,
        "score_updated_at": NOW,
        "recycle_count": 1,
        **PROFILE,
    }
    row.update(changes)
    return row


def decide(row: dict[str, Any], *, suppressed: bool = False) -> Qualified | None:
    return qualifies(row, suppressed=suppressed, sla=SLA, rules=RULES, fit_rules=(), now=NOW)


def test_a_recycled_lead_at_the_threshold_with_the_fit_qualifies() -> None:
    qualified = decide(lead())
    assert qualified is not None
    assert (qualified.score, qualified.threshold) == (70.0, 60)
    assert qualified.fit in ("A", "B")


def test_only_recycled_unsuppressed_leads_at_their_threshold_qualify() -> None:
    assert decide(lead(stage="mql")) is None
    assert decide(lead(), suppressed=True) is None
    assert decide(lead(recycle_count=2)) is None  # 75 for a lead recycled before
    assert decide(lead(score=80.0, score_updated_at=NOW - timedelta(days=60))) is None  # decayed
    assert decide({**lead(), "company": None, "title": None, "attributes": {}}) is None  # fit


def test_a_reason_that_never_requalifies_keeps_the_lead() -> None:
    assert reason_allows(SLA, None)  # no recycle record: nothing says no
    assert reason_allows(SLA, {"reason": "no_budget"})
    assert not reason_allows(SLA, {"reason": "not_a_fit"})
    assert reason_allows(SLA, {"reason": "a reason the SLA no longer has"})
