"""Recycling against a real database (SQLite and PostgreSQL): stages, records, routing, re-entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from dripengine.campaigns import Campaign
from dripengine.cli.scaffold import SKELETON
from dripengine.exceptions import FunnelError
from dripengine.funnel.recycle import recycle
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.funnel.sla import load_sla
from dripengine.storage.engine import session_scope
from dripengine.storage.models import (
    Enrollment,
    Lead,
    RecycleRecord,
    ScoreChange,
    StageChange,
    Suppression,
)
from tests.factories import campaign

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin


WINBACK = campaign(
    "lost-sql-winback", 20, ["sql", "opportunity"], ["no_budget", "went_silent", "chose_competitor"]
)
NURTURE = campaign("rejected-mql-nurture", 10, ["mql", "sal"], [], reentry={"policy": "deny"})
SLA = load_sla(SKELETON / "sla.yaml")


def ctx(now: datetime = MONDAY, campaigns: list[Campaign] | None = None) -> RecycleContext:
    return RecycleContext(
        campaigns=campaigns if campaigns is not None else [WINBACK, NURTURE], sla=SLA, now=now
    )


def run(engine, request: RecycleRequest, context: RecycleContext | None = None):  # type: ignore[no-untyped-def]
    return recycle(engine, request, context or ctx())


def test_new_lead_is_created_recycled_and_enrolled(engine) -> None:  # type: ignore[no-untyped-def]
    outcome = run(
        engine,
        RecycleRequest("Jane@Acme.example", "no_budget", "sql", note="revisit in Q3", actor="rep"),
    )
    assert outcome.outcome == "enrolled"
    assert outcome.created
    assert (outcome.campaign_id, outcome.track, outcome.step_id) == (
        "lost-sql-winback",
        "cold",
        "checkin",
    )
    # wait 1d from Monday 11:00 Berlin -> Tuesday 11:00 Berlin, inside the window, plus a spread
    local = outcome.due_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert local.date().isoformat() == "2026-11-24" and 11 <= local.hour < 17
    assert outcome.describe().startswith(
        'jane@acme.example recycled from SQL (no_budget) into "Lost Sql Winback" (track cold); first email "checkin" due Tue 24 Nov'
    )
    with Session(engine) as session:
        lead = session.exec(select(Lead)).one()
        assert (lead.email, lead.stage, lead.recycle_count) == ("jane@acme.example", "recycled", 1)
        record = session.exec(select(RecycleRecord)).one()
        assert (record.from_stage, record.reason, record.note, record.actor, record.outcome) == (
            "sql",
            "no_budget",
            "revisit in Q3",
            "rep",
            "enrolled",
        )
        changes = session.exec(select(StageChange)).all()
        assert [(c.from_stage, c.to_stage) for c in changes] == [("sql", "recycled")]
        enrollment = session.exec(select(Enrollment)).one()
        assert enrollment.next_due_at == outcome.due_at
        assert (enrollment.status, enrollment.round, enrollment.campaign_version) == (
            "active",
            1,
            1,
        )


def test_existing_lead_keeps_fields_and_history_shows_reported_stage(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(
            Lead(
                email="bob@acme.example",
                stage="lead",
                company="Acme",
                timezone="America/New_York",
                created_at=MONDAY - timedelta(days=90),
                updated_at=MONDAY - timedelta(days=90),
            )
        )
    outcome = run(engine, RecycleRequest("bob@acme.example", "chose_competitor", "opportunity"))
    assert not outcome.created
    assert outcome.timezone == "America/New_York"
    with Session(engine) as session:
        changes = session.exec(select(StageChange).order_by(StageChange.id)).all()
        assert [(c.from_stage, c.to_stage, c.reason) for c in changes] == [
            ("lead", "opportunity", "stage reported by sales"),
            ("opportunity", "recycled", "chose_competitor"),
        ]
        assert session.exec(select(Lead)).one().company == "Acme"


def test_priority_routes_first_and_unmatched_is_recorded(engine) -> None:  # type: ignore[no-untyped-def]
    # NURTURE takes any reason from mql/sal; not_a_fit from sql matches nothing
    assert (
        run(engine, RecycleRequest("a@acme.example", "not_a_fit", "mql")).campaign_id
        == "rejected-mql-nurture"
    )
    outcome = run(engine, RecycleRequest("b@acme.example", "not_a_fit", "sql"))
    assert outcome.outcome == "unmatched"
    assert "not enrolled" in outcome.describe()
    with Session(engine) as session:
        lead = session.exec(select(Lead).where(Lead.email == "b@acme.example")).one()
        assert lead.stage == "recycled"
        assert session.exec(select(Enrollment).where(Enrollment.lead_id == lead.id)).first() is None


def test_refusals_change_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(Suppression(email="gone@acme.example", reason="unsubscribe", created_at=MONDAY))
        session.add(
            Lead(email="cust@acme.example", stage="customer", created_at=MONDAY, updated_at=MONDAY)
        )
    with pytest.raises(FunnelError, match="suppressed"):
        run(engine, RecycleRequest("GONE@acme.example", "no_budget", "sql"))
    with pytest.raises(FunnelError, match="customers are not recycled"):
        run(engine, RecycleRequest("cust@acme.example", "no_budget", "sql"))
    with pytest.raises(FunnelError, match="not a valid email address"):
        run(engine, RecycleRequest("not-an-address", "no_budget", "sql"))
    with Session(engine) as session:
        assert session.exec(select(Lead).where(Lead.email == "gone@acme.example")).first() is None
        assert (
            session.exec(select(Lead).where(Lead.email == "cust@acme.example")).one().stage
            == "customer"
        )
        assert session.exec(select(RecycleRecord)).all() == []


def test_restart_policy_starts_a_new_round(engine) -> None:  # type: ignore[no-untyped-def]
    run(engine, RecycleRequest("c@acme.example", "no_budget", "sql"))
    later = ctx(MONDAY + timedelta(days=40))
    outcome = run(engine, RecycleRequest("c@acme.example", "went_silent", "sql"), later)
    assert outcome.outcome == "restarted"
    with Session(engine) as session:
        enrollment = session.exec(select(Enrollment)).one()
        assert (enrollment.round, enrollment.step_index, enrollment.enrolled_at) == (
            2,
            0,
            later.now,
        )
        assert session.exec(select(Lead)).one().recycle_count == 2
        changes = session.exec(select(StageChange).order_by(StageChange.id)).all()
        assert [(c.from_stage, c.to_stage) for c in changes][-1] == ("recycled", "recycled")


def test_deny_policy_and_cooldown_and_max_recycles(engine) -> None:  # type: ignore[no-untyped-def]
    run(engine, RecycleRequest("d@acme.example", "bad_timing", "mql"))
    outcome = run(
        engine,
        RecycleRequest("d@acme.example", "bad_timing", "mql"),
        ctx(MONDAY + timedelta(days=1)),
    )
    assert outcome.outcome == "denied"
    assert "re-entry is denied" in outcome.describe()

    strict = campaign(
        "strict",
        1,
        ["sql"],
        [],
        reentry={"policy": "restart", "cooldown_days": 30, "max_recycles": 2},
    )
    run(engine, RecycleRequest("e@acme.example", "no_budget", "sql"), ctx(campaigns=[strict]))
    cooled = run(
        engine,
        RecycleRequest("e@acme.example", "no_budget", "sql"),
        ctx(MONDAY + timedelta(days=10), [strict]),
    )
    assert cooled.outcome == "denied" and "cool-down runs until 23 Dec 2026" in cooled.detail
    third = run(
        engine,
        RecycleRequest("e@acme.example", "no_budget", "sql"),
        ctx(MONDAY + timedelta(days=60), [strict]),
    )
    assert third.outcome == "denied" and "recycled 2 times already" in third.detail
    with Session(engine) as session:
        outcomes = [
            r.outcome for r in session.exec(select(RecycleRecord).order_by(RecycleRecord.id))
        ]
        assert outcomes[-3:] == ["enrolled", "denied", "denied"]


def test_recycling_into_another_campaign_exits_the_first(engine) -> None:  # type: ignore[no-untyped-def]
    run(engine, RecycleRequest("f@acme.example", "bad_timing", "mql"))
    outcome = run(
        engine,
        RecycleRequest("f@acme.example", "no_budget", "sql"),
        ctx(MONDAY + timedelta(days=30)),
    )
    assert outcome.campaign_id == "lost-sql-winback"
    with Session(engine) as session:
        rows = {e.campaign_id: e for e in session.exec(select(Enrollment))}
        assert rows["rejected-mql-nurture"].status == "exited"
        assert rows["rejected-mql-nurture"].exit_reason == "recycled into lost-sql-winback"
        assert rows["lost-sql-winback"].status == "active"


def test_hot_lead_gets_hot_track(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(
            Lead(
                email="hot@acme.example",
                stage="sql",
                score=72,
                created_at=MONDAY,
                updated_at=MONDAY,
            )
        )
    outcome = run(
        engine,
        RecycleRequest("hot@acme.example", "no_budget"),
        replace(ctx(), reset_score=False),
    )
    assert (outcome.track, outcome.step_id, outcome.from_stage) == ("hot", "demo", "sql")


def test_recycling_resets_the_score_so_the_lead_starts_cold(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(
            Lead(
                email="hot@acme.example",
                stage="sql",
                score=72,
                created_at=MONDAY,
                updated_at=MONDAY,
            )
        )
    outcome = run(engine, RecycleRequest("hot@acme.example", "no_budget"))
    assert outcome.track == "cold"
    with Session(engine) as session:
        lead = session.exec(select(Lead)).one()
        assert lead.score == 0
        (change,) = session.exec(select(ScoreChange)).all()
        assert (change.delta, change.score_after) == (-72, 0)
