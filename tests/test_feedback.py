"""Sales feedback on handed-back leads: each outcome, its stage move, a rejection recycled through
the recycle path (or denied by its re-entry rules), and the refusals. Real rows on SQLite and
PostgreSQL: leads recycled, requalified by the ingest path, then given feedback."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine import vocabulary as v
from dripengine.clock import FixedClock
from dripengine.engagement.ingest import Engagement
from dripengine.exceptions import FeedbackConflict, FeedbackError, FunnelError, LeadNotFound
from dripengine.funnel.feedback import record
from dripengine.funnel.feedback_plan import FeedbackRequest, decide
from dripengine.funnel.recycle import recycle
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.storage.engine import session_scope
from dripengine.storage.models import (
    Enrollment,
    Feedback,
    Handoff,
    Lead,
    RecycleRecord,
    StageChange,
)
from dripengine.vocabulary import IncomingEvent
from tests.test_dispatcher import CAMPAIGNS, MONDAY, SLA, make_settings

PROFILE: dict[str, Any] = {
    "first_name": "Jane",
    "last_name": "Doe",
    "company": "Acme Corp",
    "title": "Head of Operations",
    "timezone": "Europe/Berlin",
    "attributes": {"industry": "manufacturing", "employees": 450},
}
HANDED_BACK_AT = MONDAY + timedelta(days=2)
LATER = HANDED_BACK_AT + timedelta(days=1)


def handed_back(
    engine: Engine,
    tmp_path: Path,
    email: str,
    *,
    stage: str = "sql",
    reason: str = "no_budget",
    at: datetime = HANDED_BACK_AT,
    events: tuple[tuple[str, str | None], ...] = (
        (v.DEMO_REQUEST, None),
        (v.CLICK, "pricing"),
        (v.REPLY, None),
    ),
) -> None:
    """A lead recycled at MONDAY, then requalified by engagement through the ingest path at ``at``."""
    with session_scope(engine) as session:
        session.add(Lead(email=email, stage=stage, created_at=MONDAY, updated_at=MONDAY, **PROFILE))
    recycle(engine, RecycleRequest(email, reason, stage), RecycleContext(CAMPAIGNS, SLA, MONDAY))
    engagement = Engagement(engine, make_settings(tmp_path), SLA, FixedClock(at))
    result = engagement.ingest(
        [
            IncomingEvent(
                type=kind,
                occurred_at=at - timedelta(minutes=10 - i),
                provider="api",
                email=email,
                tag=tag,
                url=f"https://acme.example/{tag}" if tag else None,
            )
            for i, (kind, tag) in enumerate(events)
        ]
    )
    assert result.requalified == [email]


def ctx(at: datetime = LATER) -> RecycleContext:
    return RecycleContext(CAMPAIGNS, SLA, at)


def give(engine: Engine, email: str, outcome: str, at: datetime = LATER, **kw: Any) -> Any:
    return record(engine, FeedbackRequest(email, outcome, actor="sam", **kw), ctx(at))


def rows(engine: Engine, model: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)))


def lead(engine: Engine, email: str = "jane@acme.example") -> Lead:
    with Session(engine) as session:
        return session.exec(select(Lead).where(Lead.email == email)).one()


def last_change(engine: Engine) -> tuple[str | None, str, str | None, str | None]:
    change = rows(engine, StageChange)[-1]
    return change.from_stage, change.to_stage, change.reason, change.actor


def test_accepted_moves_mql_to_sal_and_copies_the_handoff(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    (handoff,) = rows(engine, Handoff)
    result = give(engine, "JANE@acme.example", "accepted", note="call booked")
    assert result.describe() == "jane@acme.example: accepted recorded; MQL -> SAL"
    assert lead(engine).stage == "sal"
    assert last_change(engine) == ("mql", "sal", "accepted by sales", "sam")
    (row,) = rows(engine, Feedback)
    assert (row.outcome, row.reason, row.note, row.actor, row.at) == (
        "accepted",
        None,
        "call booked",
        "sam",
        LATER,
    )
    assert row.handoff_id == handoff.id
    assert (row.campaign_id, row.recycle_reason) == ("lost-sql-winback", "no_budget")
    assert row.score_at_handoff == pytest.approx(handoff.score) and handoff.score >= 60
    assert row.fit_at_handoff == handoff.fit_grade == "A"


def test_won_after_accepted_makes_a_customer_and_a_second_won_is_a_noop(
    engine: Engine, tmp_path: Path
) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    give(engine, "jane@acme.example", "accepted")
    result = give(engine, "jane@acme.example", "won", at=LATER + timedelta(days=20))
    assert (result.stage, lead(engine).stage) == ("customer", "customer")
    assert last_change(engine) == ("sal", "customer", "won by sales", "sam")
    again = give(engine, "jane@acme.example", "won", at=LATER + timedelta(days=21))
    assert again.noop and "already won on 2026-12-16; nothing changed" in again.describe()
    assert [f.outcome for f in rows(engine, Feedback)] == ["accepted", "won"]


def test_won_straight_from_the_handback_is_a_legal_move(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    give(engine, "jane@acme.example", "won")
    assert lead(engine).stage == "customer"
    assert last_change(engine)[:2] == ("mql", "customer")


def test_lost_keeps_the_stage_without_a_reason(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    give(engine, "jane@acme.example", "accepted")
    result = give(engine, "jane@acme.example", "lost")
    assert "lost recorded; stays SAL" in result.describe()
    assert lead(engine).stage == "sal"
    assert [f.outcome for f in rows(engine, Feedback)] == ["accepted", "lost"]


def test_lost_with_a_reason_is_recycled_from_the_stage_sales_names(
    engine: Engine, tmp_path: Path
) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    give(engine, "jane@acme.example", "accepted")
    # lost 70 days on: past lost-sql-winback's 60-day cool-down since Monday's recycle
    result = give(
        engine,
        "jane@acme.example",
        "lost",
        at=MONDAY + timedelta(days=70),
        reason="chose_competitor",
        from_stage="opportunity",
    )
    assert result.recycle is not None
    assert (result.recycle.outcome, result.recycle.campaign_id) == ("restarted", "lost-sql-winback")
    after = lead(engine)
    assert (after.stage, after.recycle_count) == ("recycled", 2)
    history = [(c.from_stage, c.to_stage, c.reason) for c in rows(engine, StageChange)][-2:]
    assert history == [
        ("sal", "opportunity", "stage reported by sales"),
        ("opportunity", "recycled", "chose_competitor"),
    ]
    assert rows(engine, Feedback)[-1].reason == "chose_competitor"


def test_rejected_goes_back_to_recycled_into_the_campaign_that_fits(
    engine: Engine, tmp_path: Path
) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")  # came from sql: lost-sql-winback
    result = give(engine, "jane@acme.example", "rejected", reason="No_Budget", note="freeze")
    assert result.recycle is not None
    assert result.recycle.outcome == "enrolled"
    assert result.recycle.campaign_id == "rejected-mql-nurture"
    assert result.describe().startswith(
        "jane@acme.example: rejected (no_budget) recorded; jane@acme.example recycled from MQL "
        '(no_budget) into "Rejected MQL nurture"'
    )
    after = lead(engine)
    assert (after.stage, after.recycle_count, after.score) == ("recycled", 2, 0)
    assert last_change(engine) == ("mql", "recycled", "no_budget", "sam")
    record_ = rows(engine, RecycleRecord)[-1]
    assert (record_.from_stage, record_.reason, record_.note, record_.actor) == (
        "mql",
        "no_budget",
        "freeze",
        "sam",
    )
    active = [(e.campaign_id, e.status) for e in rows(engine, Enrollment)]
    assert active == [("lost-sql-winback", "exited"), ("rejected-mql-nurture", "active")]
    (row,) = rows(engine, Feedback)
    assert (row.outcome, row.reason, row.recycle_reason) == ("rejected", "no_budget", "no_budget")


def test_rejected_within_the_cooldown_is_recycled_but_denied_the_campaign(
    engine: Engine, tmp_path: Path
) -> None:
    # recycled from mql into rejected-mql-nurture on Monday (30-day cool-down), back to sales
    # on Wednesday, rejected again on Thursday: the SLA's re-entry rule says no
    handed_back(engine, tmp_path, "jane@acme.example", stage="mql", reason="bad_timing")
    result = give(engine, "jane@acme.example", "rejected", reason="bad_timing")
    assert result.recycle is not None
    assert result.recycle.outcome == "denied"
    assert "30-day cool-down runs until 23 Dec 2026" in result.recycle.detail
    assert lead(engine).stage == "recycled"
    assert [e.status for e in rows(engine, Enrollment)] == ["exited"]
    assert rows(engine, Feedback)[0].outcome == "rejected"


def test_a_suppressed_lead_is_recycled_without_a_campaign(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    Engagement(engine, make_settings(tmp_path), SLA, FixedClock(LATER)).ingest(
        [
            IncomingEvent(
                type=v.UNSUBSCRIBE, occurred_at=LATER, provider="api", email="jane@acme.example"
            )
        ]
    )
    result = give(engine, "jane@acme.example", "rejected", reason="no_budget")
    assert "MQL -> recycled; not enrolled: suppressed (unsubscribe on 26 Nov 2026)" in (
        result.describe()
    )
    assert lead(engine).stage == "recycled"
    assert len(rows(engine, RecycleRecord)) == 1  # only the first recycle: no campaign this time


def test_the_refusals_change_nothing(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    with session_scope(engine) as session:
        session.add(
            Lead(email="new@acme.example", stage="lead", created_at=MONDAY, updated_at=MONDAY)
        )
    with pytest.raises(LeadNotFound, match="no lead nobody@acme.example"):
        give(engine, "nobody@acme.example", "accepted")
    with pytest.raises(
        FeedbackConflict,
        match="new@acme.example was never handed back by dripengine: feedback is for requalified",
    ):
        give(engine, "new@acme.example", "accepted")
    with pytest.raises(
        FeedbackError,
        match=r'"budget" is not a recycle reason in the SLA \(use one of: no_budget, bad_timing, no_authority, no_need_yet, not_a_fit\)',
    ):
        give(engine, "jane@acme.example", "rejected", reason="budget")
    with pytest.raises(FeedbackError, match='"went_silent" is not one the SLA gives for MQL'):
        give(engine, "jane@acme.example", "rejected", reason="went_silent")
    with pytest.raises(FeedbackError, match="a reason is required"):
        give(engine, "jane@acme.example", "rejected")
    with pytest.raises(FeedbackError, match='"maybe" is not a feedback outcome'):
        give(engine, "jane@acme.example", "maybe")
    with pytest.raises(FeedbackConflict, match="was not accepted: report --accepted first"):
        give(engine, "jane@acme.example", "lost")
    assert rows(engine, Feedback) == []
    assert lead(engine).stage == "mql"


def test_contradictions_are_refused(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    handed_back(engine, tmp_path, "bob@acme.example")
    give(engine, "jane@acme.example", "rejected", reason="no_budget")
    with pytest.raises(
        FeedbackConflict, match=r"was rejected \(no_budget\) on 2026-11-26 and went back"
    ):
        give(engine, "jane@acme.example", "won")
    again = give(engine, "jane@acme.example", "rejected", reason="bad_timing")
    assert again.noop and "already rejected (no_budget)" in again.message
    give(engine, "bob@acme.example", "accepted")
    with pytest.raises(
        FeedbackConflict, match="was accepted on 2026-11-26: an accepted lead is --won or --lost"
    ):
        give(engine, "bob@acme.example", "rejected", reason="no_budget")
    give(engine, "bob@acme.example", "won")
    with pytest.raises(FeedbackConflict, match="was won on 2026-11-26: that is final"):
        give(engine, "bob@acme.example", "lost")
    assert [f.outcome for f in rows(engine, Feedback)] == ["rejected", "accepted", "won"]


def test_feedback_applies_to_the_latest_handback(engine: Engine, tmp_path: Path) -> None:
    handed_back(engine, tmp_path, "jane@acme.example")
    give(engine, "jane@acme.example", "rejected", reason="no_budget")
    # back in nurture, engaged again, handed back a second time
    later = LATER + timedelta(days=40)
    engagement = Engagement(engine, make_settings(tmp_path), SLA, FixedClock(later))
    kinds = (v.DEMO_REQUEST, v.REPLY, v.FORM_FILL, v.REPLY)  # 95: twice recycled needs 75
    result = engagement.ingest(
        [
            IncomingEvent(
                type=kind,
                occurred_at=later - timedelta(minutes=i),
                provider="api",
                email="jane@acme.example",
            )
            for i, kind in enumerate(kinds)
        ]
    )
    assert result.requalified == ["jane@acme.example"]
    first, second = rows(engine, Handoff)
    give(engine, "jane@acme.example", "accepted", at=later + timedelta(days=1))
    feedback = rows(engine, Feedback)
    assert [(f.outcome, f.handoff_id) for f in feedback] == [
        ("rejected", first.id),
        ("accepted", second.id),
    ]
    assert feedback[1].recycle_reason == "no_budget" and feedback[1].campaign_id == (
        second.campaign_id
    )


def test_decide_is_pure_and_names_the_illegal_move() -> None:
    from dripengine.funnel.feedback_plan import Given, HandoffState, LeadState

    handoff = HandoffState(7, MONDAY, "c", 70.0, "A", "no_budget")
    recycled = LeadState(1, "x@acme.example", "recycled")
    with pytest.raises(FunnelError, match="cannot move from recycled to SAL"):
        decide(FeedbackRequest("x@acme.example", "accepted"), recycled, handoff, [], SLA, MONDAY)
    ahead = LeadState(1, "x@acme.example", "opportunity")
    plan = decide(FeedbackRequest("x@acme.example", "accepted"), ahead, handoff, [], SLA, MONDAY)
    assert plan.stage_move is None and "stays opportunity" in plan.message
    plan = decide(
        FeedbackRequest("x@acme.example", "won"),
        LeadState(1, "x@acme.example", "sal"),
        handoff,
        [Given("accepted", None, MONDAY)],
        SLA,
        MONDAY,
    )
    assert plan.stage_move == ("sal", "customer", "won by sales")
    assert plan.row is not None and plan.row["score_at_handoff"] == 70.0
