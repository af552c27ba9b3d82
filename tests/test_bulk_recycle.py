"""The batch path of bulk recycling gives what one ``recycle`` per row gives (SQLite and PostgreSQL).

Each comparison seeds a database, runs a list of varied requests through the single path, reads
the rows back, wipes and re-seeds the same database, runs the list through the batch path and
compares rows (meaningful columns, not ids), outcomes and refusals.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine.cli.scaffold import SKELETON
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError, FunnelError
from dripengine.funnel.recycle import load, recycle, write
from dripengine.funnel.recycle_csv import RowProblem, recycle_records, request_from_record
from dripengine.funnel.recycle_plan import decide
from dripengine.funnel.recycle_request import RecycleContext, RecycleOutcome, RecycleRequest
from dripengine.funnel.sla import load_sla
from dripengine.leads.csvfile import CsvRecord
from dripengine.storage.engine import session_scope
from dripengine.storage.models import Enrollment, Lead, RecycleRecord, StageChange, Suppression
from tests.factories import campaign

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EARLIER = MONDAY - timedelta(days=40)
RECENTLY = MONDAY - timedelta(days=10)
SLA = load_sla(SKELETON / "sla.yaml")


CAMPAIGNS = [
    campaign(
        "competitor-watch", 5, ["opportunity"], ["chose_competitor"], reentry={"policy": "resume"}
    ),
    campaign(
        "silent-sql",
        6,
        ["sql"],
        ["went_silent"],
        reentry={"policy": "restart", "cooldown_days": 30, "max_recycles": 2},
    ),
    campaign(
        "authority-saas",
        7,
        ["sql"],
        ["no_authority"],
        audience={
            "stages": ["sql"],
            "reasons": ["no_authority"],
            "attributes": {"industry": "saas"},
        },
    ),
    campaign("rejected-mql-nurture", 10, ["mql", "sal"], [], reentry={"policy": "deny"}),
    campaign(
        "lost-sql-winback",
        20,
        ["sql", "opportunity"],
        ["no_budget", "went_silent", "chose_competitor"],
    ),
]


def ctx(now: datetime) -> RecycleContext:
    return RecycleContext(campaigns=CAMPAIGNS, sla=SLA, now=now)


def seed(engine: Engine) -> None:
    """Leads in several stages, a suppression, and enrollments from earlier recycles."""
    with session_scope(engine) as session:
        for email, stage, extra in [
            ("cust@acme.example", "customer", {}),
            ("evan@acme.example", "evangelist", {}),
            ("sub@acme.example", "subscriber", {}),
            ("back@acme.example", "recycled", {"recycle_count": 1}),
            ("again@acme.example", "recycled", {"recycle_count": 1, "country": "DE"}),
            (
                "lead@acme.example",
                "lead",
                {"company": "Acme", "timezone": "America/New_York", "attributes": {"size": "50"}},
            ),
            ("mql@acme.example", "mql", {"score": 70.0, "timezone": "Asia/Tokyo"}),
            ("hot@acme.example", "sql", {"score": 72.0, "first_name": "Hal"}),
        ]:
            session.add(
                Lead(
                    email=email,
                    stage=stage,
                    created_at=EARLIER - timedelta(days=60),
                    updated_at=EARLIER - timedelta(days=60),
                    **extra,
                )
            )
        session.add(
            Suppression(email="gone@acme.example", reason="unsubscribe", created_at=EARLIER)
        )
    for when, email, stage, reason in [
        (EARLIER - timedelta(days=40), "max@acme.example", "sql", "went_silent"),
        (EARLIER, "max@acme.example", "sql", "went_silent"),
        (EARLIER, "restart@acme.example", "sql", "no_budget"),
        (EARLIER, "deny@acme.example", "mql", "bad_timing"),
        (EARLIER, "switch@acme.example", "mql", "bad_timing"),
        (EARLIER, "resume@acme.example", "opportunity", "chose_competitor"),
        (RECENTLY, "resume@acme.example", "sql", "no_budget"),
        (RECENTLY, "keep@acme.example", "opportunity", "chose_competitor"),
        (RECENTLY, "cool@acme.example", "sql", "went_silent"),
    ]:
        recycle(engine, RecycleRequest(email, reason, stage, actor="seed"), ctx(when))


def wipe(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in ("enrollment", "recycle_record", "stage_change", "suppression", "lead"):
            connection.exec_driver_sql(f"DELETE FROM {table}")


def records() -> list[CsvRecord]:
    """A file's rows: new and existing leads, refusals, every re-entry path, time zones."""
    rows: list[dict[str, str]] = [
        # new leads, with fields, attributes and time zones (one not a real zone)
        {
            "email": "Jane@Acme.example",
            "from_stage": "sql",
            "reason": "no_budget",
            "note": "Q3",
            "first_name": "Jane",
            "timezone": "Europe/London",
            "industry": "saas",
        },
        {
            "email": "tom@kontor.example",
            "from_stage": "opportunity",
            "reason": "went_silent",
            "timezone": "America/Los_Angeles",
            "actor": "rep7",
        },
        {
            "email": "mars@acme.example",
            "from_stage": "mql",
            "reason": "no_need_yet",
            "timezone": "Mars/Base",
        },
        {
            "email": "kim@acme.example",
            "from_stage": "sal",
            "reason": "NO_BUDGET",
            "company": "Kim & Co",
        },
        # existing leads in different stages
        {
            "email": "lead@acme.example",
            "from_stage": "opportunity",
            "reason": "chose_competitor",
            "size": "500",
            "industry": "retail",
        },
        {"email": "mql@acme.example", "reason": "no_need_yet"},
        {"email": "hot@acme.example", "reason": "no_budget", "first_name": "Harold"},
        {"email": "again@acme.example", "from_stage": "sql", "reason": "not_a_fit"},
        # re-entry: restart, deny policy, cool-down, max recycles, resume, keep, switch campaigns
        {"email": "restart@acme.example", "from_stage": "sql", "reason": "no_budget"},
        {"email": "deny@acme.example", "from_stage": "mql", "reason": "bad_timing"},
        {"email": "cool@acme.example", "from_stage": "sql", "reason": "went_silent"},
        {"email": "max@acme.example", "from_stage": "sql", "reason": "went_silent"},
        {"email": "resume@acme.example", "from_stage": "opportunity", "reason": "chose_competitor"},
        {"email": "keep@acme.example", "from_stage": "opportunity", "reason": "chose_competitor"},
        {"email": "switch@acme.example", "from_stage": "sql", "reason": "no_budget"},
        # unmatched: no campaign for the reason, and an attribute filter the lead fails
        {"email": "nofit@acme.example", "from_stage": "sql", "reason": "not_a_fit"},
        {
            "email": "boss@acme.example",
            "from_stage": "sql",
            "reason": "no_authority",
            "industry": "retail",
        },
        {
            "email": "saas@acme.example",
            "from_stage": "sql",
            "reason": "no_authority",
            "industry": "SaaS",
        },
        # refused
        {"email": "gone@acme.example", "from_stage": "sql", "reason": "no_budget"},
        {"email": "cust@acme.example", "from_stage": "sql", "reason": "no_budget"},
        {"email": "evan@acme.example", "reason": "no_budget"},
        {"email": "sub@acme.example", "reason": "no_budget"},
        {"email": "back@acme.example", "reason": "no_budget"},
        {"email": "newbie@acme.example", "reason": "no_budget"},
        {"email": "bad-address", "from_stage": "sql", "reason": "no_budget"},
        {"email": "x@acme.example", "from_stage": "sql", "reason": "unheard_of"},
        {"email": "y@acme.example", "from_stage": "sql", "reason": "no_need_yet"},
        {"email": "z@acme.example", "from_stage": "sql", "reason": ""},
        {"email": "w@acme.example", "from_stage": "customer", "reason": "no_budget"},
        # after the refusals, more rows that are kept
        {
            "email": "last@acme.example",
            "from_stage": "sql",
            "reason": "chose_competitor",
            "timezone": "Asia/Tokyo",
        },
    ]
    return [CsvRecord(line, values) for line, values in enumerate(rows, start=2)]


def single_path(
    engine: Engine, rows: Sequence[CsvRecord], context: RecycleContext
) -> tuple[list[RecycleOutcome], list[RowProblem]]:
    """One ``recycle`` per row, each in its own transaction (no duplicates in ``rows``)."""
    results, errors = [], []
    for record in rows:
        email = record.values["email"].strip()
        with suppress(InvalidEmail):
            email = normalise_email(email)
        try:
            request = request_from_record(record, "importer")
            results.append(recycle(engine, request, context))
        except DripError as exc:
            errors.append(RowProblem(record.line, email, exc.message))
    return results, errors


def stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a recycle writes, by table, as sorted tuples of meaningful columns."""
    with Session(engine) as session:
        emails = {lead.id: lead.email for lead in session.exec(select(Lead)).all()}
        leads = [
            (
                lead.email,
                lead.stage,
                lead.recycle_count,
                lead.score,
                lead.first_name,
                lead.last_name,
                lead.company,
                lead.title,
                lead.phone,
                lead.country,
                lead.timezone,
                json.dumps(lead.attributes, sort_keys=True),
                lead.created_at,
                lead.updated_at,
            )
            for lead in session.exec(select(Lead)).all()
        ]
        changes = [
            (emails[c.lead_id], c.from_stage, c.to_stage, c.reason, c.actor, c.at)
            for c in session.exec(select(StageChange)).all()
        ]
        records_ = [
            (
                emails[r.lead_id],
                r.from_stage,
                r.reason,
                r.note,
                r.actor,
                r.at,
                r.recycle_count,
                r.campaign_id,
                r.outcome,
                r.detail,
            )
            for r in session.exec(select(RecycleRecord)).all()
        ]
        enrollments = [
            (
                emails[e.lead_id],
                e.campaign_id,
                e.campaign_version,
                e.status,
                e.track,
                e.current_step,
                e.step_index,
                e.round,
                e.next_due_at,
                e.exit_reason,
                e.enrolled_at,
                e.updated_at,
                e.ended_at,
            )
            for e in session.exec(select(Enrollment)).all()
        ]
    return {
        "lead": sorted(leads, key=repr),
        "stage_change": sorted(changes, key=repr),
        "recycle_record": sorted(records_, key=repr),
        "enrollment": sorted(enrollments, key=repr),
    }


@pytest.mark.parametrize("batch_size", [4, 500])
def test_bulk_writes_what_one_recycle_per_row_writes(engine: Engine, batch_size: int) -> None:
    rows = records()
    seed(engine)
    results, errors = single_path(engine, rows, ctx(MONDAY))
    expected = stored(engine)
    wipe(engine)
    seed(engine)
    report = recycle_records(engine, rows, ctx(MONDAY), actor="importer", batch_size=batch_size)
    assert stored(engine) == expected
    assert report.results == results
    assert report.errors == errors
    assert report.rows_read == len(rows) and report.committed
    # the list reaches every path, so the comparison means something
    assert {r.outcome for r in results} == {
        "enrolled",
        "restarted",
        "resumed",
        "kept",
        "denied",
        "unmatched",
    }
    assert any(r.created for r in results) and any(not r.created for r in results)
    assert len(errors) == 11
    assert any(e.status == "exited" for e in _enrollments(engine))


def test_a_later_decision_in_a_batch_sees_an_earlier_one(engine: Engine) -> None:
    """The same lead twice in one batch: what two single recycles, one after the other, give."""
    steps = [
        (RecycleRequest("twice@acme.example", "bad_timing", "mql", actor="a"), ctx(EARLIER)),
        (RecycleRequest("twice@acme.example", "no_budget", "sql", actor="b"), ctx(RECENTLY)),
        (RecycleRequest("Twice@acme.example", "bad_timing", "sal", actor="c"), ctx(MONDAY)),
        (RecycleRequest("hot@acme.example", "went_silent", actor="d"), ctx(EARLIER)),
        (RecycleRequest("hot@acme.example", "went_silent", "sql", actor="e"), ctx(RECENTLY)),
        (RecycleRequest("hot@acme.example", "went_silent", "sql", actor="f"), ctx(MONDAY)),
    ]
    seed(engine)
    singles = []
    for request, context in steps:
        singles.append(recycle(engine, request, context))
    expected = stored(engine)
    wipe(engine)
    seed(engine)
    with engine.connect() as connection:
        pending = load(connection, ["twice@acme.example", "hot@acme.example"])
        batched = [pending.recycle(request, context) for request, context in steps]
        write(connection, pending)
        connection.commit()
    assert batched == singles
    assert [o.outcome for o in batched] == [
        "enrolled",
        "enrolled",
        "denied",
        "enrolled",
        "restarted",
        "denied",
    ]
    assert [o.created for o in batched] == [True, False, False, False, False, False]
    assert stored(engine) == expected


def test_strict_keeps_nothing_when_a_row_is_refused(engine: Engine) -> None:
    seed(engine)
    before = stored(engine)
    report = recycle_records(engine, records(), ctx(MONDAY), strict=True, batch_size=4)
    assert not report.committed and report.errors and report.results
    assert stored(engine) == before
    ok = [r for r in records() if r.values["email"] in ("Jane@Acme.example", "nofit@acme.example")]
    report = recycle_records(engine, ok, ctx(MONDAY), strict=True)
    assert report.committed and not report.errors
    assert len(stored(engine)["recycle_record"]) == len(before["recycle_record"]) + 2


def test_decide_needs_no_database() -> None:
    request = RecycleRequest(
        "New@Acme.example", "no_budget", "sql", lead_fields={"timezone": "Asia/Tokyo"}
    )
    decision = decide(None, None, [], request, ctx(MONDAY))
    assert decision.lead.id is None and decision.lead.stage == "recycled"
    assert decision.outcome.created and decision.outcome.outcome == "enrolled"
    assert [(c.from_stage, c.to_stage) for c in decision.stage_changes] == [("sql", "recycled")]
    (enrollment,) = decision.enrollments
    assert (enrollment.campaign_id, enrollment.id, enrollment.next_due_at) == (
        "lost-sql-winback",
        None,
        decision.outcome.due_at,
    )
    assert decision.outcome.timezone == "Asia/Tokyo"
    with pytest.raises(FunnelError, match="suppressed"):
        decide(None, "unsubscribe on 01 Oct 2026", [], request, ctx(MONDAY))


def _enrollments(engine: Engine) -> list[Enrollment]:
    with Session(engine) as session:
        return list(session.exec(select(Enrollment)).all())
