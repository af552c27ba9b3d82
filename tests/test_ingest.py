"""The one ingest path: dedupe, message resolution, suppression, rescoring, requalification.

Real databases (SQLite and PostgreSQL), real messages sent by the dispatcher to the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine import vocabulary as v
from dripengine.clock import FixedClock
from dripengine.engagement.ingest import Engagement
from dripengine.storage.models import (
    CampaignPause,
    Enrollment,
    Event,
    Handoff,
    Lead,
    Message,
    ScoreChange,
    StageChange,
    Suppression,
)
from dripengine.vocabulary import IncomingEvent
from tests.test_dispatcher import MONDAY, SLA, dispatcher, enroll, make_settings

SENT_AT = MONDAY + timedelta(days=2, hours=5)  # Wednesday 16:00 Berlin: inside every window

PROFILE: dict[str, Any] = {
    "first_name": "Jane",
    "last_name": "Doe",
    "company": "Acme Corp",
    "title": "Head of Operations",
    "timezone": "Europe/Berlin",
    "attributes": {"industry": "manufacturing", "employees": 450},
}


@pytest.fixture
def sent(engine: Engine, tmp_path: Path) -> tuple[Engagement, FixedClock, Message]:
    """Jane, recycled from sql (no budget) and sent her first email; an Engagement over it."""
    settings = make_settings(tmp_path)
    enroll(engine, "jane@acme.example", **PROFILE)
    clock = FixedClock(SENT_AT)
    tally = dispatcher(engine, settings, clock).run_once()
    assert tally.sent == 1
    (message,) = _all(engine, Message)
    clock.current = SENT_AT + timedelta(hours=1)
    return Engagement(engine, settings, SLA, clock), clock, message


def _all(engine: Engine, model: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)))


def _lead(engine: Engine) -> Lead:
    with Session(engine) as session:
        return session.exec(select(Lead)).one()


def _event(kind: str, message: Message, at: datetime, **fields: Any) -> IncomingEvent:
    return IncomingEvent(
        type=kind, occurred_at=at, provider="sendgrid", message_uid=message.uid, **fields
    )


def test_the_same_batch_three_times_is_stored_once(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    batch = [
        _event(v.DELIVERED, message, at - timedelta(minutes=50), provider_event_id="d1"),
        _event(v.OPEN, message, at - timedelta(minutes=40), provider_event_id="o1"),
        _event(
            v.CLICK,
            message,
            at - timedelta(minutes=30),
            provider_event_id="c1",
            url="https://x.example/a",
        ),
    ]
    first = engagement.ingest(batch)
    second = engagement.ingest(batch)
    # SendGrid may resend a copy under another sg_event_id: the dedupe key still knows it
    third = engagement.ingest(
        [_with(e, provider_event_id=f"{e.provider_event_id}-copy") for e in batch]
    )
    assert (first.stored, first.duplicates) == (3, 0)
    assert (second.stored, second.duplicates) == (0, 3)
    assert (third.stored, third.duplicates) == (0, 3)
    assert len(_all(engine, Event)) == 3
    assert len(_all(engine, ScoreChange)) == 2  # open and click; delivered is worth nothing


def _with(event: IncomingEvent, **changes: Any) -> IncomingEvent:
    from dataclasses import replace

    return replace(event, **changes)


def test_duplicates_inside_one_batch_count_once(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    e = _event(v.CLICK, message, clock.now(), provider_event_id="c1", url="https://x.example/a")
    result = engagement.ingest([e, e, _with(e, provider_event_id="c1-other-id")])
    assert (result.stored, result.duplicates) == (1, 2)


def test_machine_opens_and_scanner_clicks_are_kept_but_weigh_nothing(
    engine: Engine, sent: Any
) -> None:
    engagement, clock, message = sent
    result = engagement.ingest(
        [
            _event(v.OPEN, message, clock.now(), machine=True),
            # a click two seconds after the email left us: a security gateway
            _event(
                v.CLICK, message, message.sent_at + timedelta(seconds=2), url="https://x.example/a"
            ),
        ]
    )
    assert result.stored == 2
    events = _all(engine, Event)
    assert [e.machine for e in events] == [True, True]
    assert _all(engine, ScoreChange) == []
    assert _lead(engine).score == 0


def test_points_follow_the_rules_with_a_daily_cap_on_opens(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    opens = [_event(v.OPEN, message, at + timedelta(minutes=i)) for i in range(6)]
    engagement.ingest(opens)
    assert _lead(engine).score == pytest.approx(3, rel=1e-3)  # 1 point an open, at most 3 a day
    engagement.ingest([_event(v.OPEN, message, at + timedelta(days=1))])
    assert _lead(engine).score == pytest.approx(4, rel=0.02)  # next day counts again (decayed)
    changes = _all(engine, ScoreChange)
    assert all("lost-sql-winback/" in c.reason for c in changes)


def test_a_hard_bounce_suppresses_and_exits_every_enrollment(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    result = engagement.ingest(
        [_event(v.BOUNCE, message, clock.now(), detail="550 5.1.1 user unknown")]
    )
    assert result.suppressed == ["jane@acme.example"]
    (suppression,) = _all(engine, Suppression)
    assert (suppression.email, suppression.reason) == ("jane@acme.example", "hard_bounce")
    assert suppression.note == "550 5.1.1 user unknown"
    assert [(e.status, e.exit_reason) for e in _all(engine, Enrollment)] == [
        ("exited", "suppressed: hard_bounce")
    ]


def test_soft_bounces_suppress_after_the_configured_count_in_a_row(
    engine: Engine, sent: Any
) -> None:
    engagement, clock, message = sent
    at = clock.now()
    engagement.ingest(
        [
            _event(v.SOFT_BOUNCE, message, at),
            _event(v.SOFT_BOUNCE, message, at + timedelta(hours=1)),
        ]
    )
    engagement.ingest([_event(v.DELIVERED, message, at + timedelta(hours=2))])  # the run is broken
    assert _lead(engine).soft_bounces == 0
    engagement.ingest([_event(v.SOFT_BOUNCE, message, at + timedelta(hours=h)) for h in (3, 4)])
    assert _all(engine, Suppression) == []
    result = engagement.ingest([_event(v.SOFT_BOUNCE, message, at + timedelta(hours=5))])
    assert result.suppressed == ["jane@acme.example"]


def test_an_unknown_message_becomes_sent_on_the_providers_evidence(
    engine: Engine, sent: Any
) -> None:
    engagement, clock, message = sent
    with engine.begin() as connection:
        connection.execute(
            update(Message.__table__).values(status="unknown", sent_at=None)  # type: ignore[attr-defined]
        )
    engagement.ingest([_event(v.PROCESSED, message, clock.now())])
    (after,) = _all(engine, Message)
    assert (after.status, after.sent_at) == ("sent", clock.now())


def test_events_for_unknown_messages_are_kept_without_effect(engine: Engine, sent: Any) -> None:
    engagement, clock, _ = sent
    result = engagement.ingest(
        [
            IncomingEvent(
                type=v.BOUNCE,
                occurred_at=clock.now(),
                provider="sendgrid",
                message_uid="not-ours",
                email="stranger@elsewhere.example",
            )
        ]
    )
    assert (result.stored, result.unmatched, result.suppressed) == (1, 1, [])


def test_a_lead_matched_by_address_when_the_event_has_no_message(engine: Engine, sent: Any) -> None:
    engagement, clock, _ = sent
    result = engagement.ingest(
        [
            IncomingEvent(
                type=v.DEMO_REQUEST,
                occurred_at=clock.now(),
                provider="api",
                email="JANE@acme.example",
            )
        ]
    )
    assert result.unmatched == 0
    assert _lead(engine).score == pytest.approx(30)


def test_requalification_moves_the_lead_to_mql_with_the_evidence(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    result = engagement.ingest(
        [
            _event(v.CLICK, message, at, url="https://acme.example/pricing", tag="pricing"),
            _event(v.REPLY, message, at + timedelta(minutes=5)),
        ]
    )
    assert result.requalified == []  # 5 + 15 + 25 = 45 < 60
    result = engagement.ingest(
        [
            _event(
                v.CLICK,
                message,
                at + timedelta(minutes=9),
                url="https://acme.example/demo",
                tag="demo",
            )
        ]
    )
    assert result.requalified == ["jane@acme.example"]
    lead = _lead(engine)
    assert (lead.stage, lead.requalified_at) == ("mql", clock.now())
    change = _all(engine, StageChange)[-1]
    assert (change.from_stage, change.to_stage, change.reason) == (
        "recycled",
        "mql",
        "requalified by lost-sql-winback",
    )
    assert [(e.status, e.exit_reason) for e in _all(engine, Enrollment)] == [
        ("exited", "requalified")
    ]
    (handoff,) = _all(engine, Handoff)
    assert (handoff.status, handoff.fit_grade) == ("pending", "A")
    payload = handoff.payload
    assert payload["lead"]["email"] == "jane@acme.example"
    assert payload["recycle"]["reason"] == "no_budget"
    assert [e["type"] for e in payload["evidence"]] == ["click", "reply", "click"]
    assert payload["evidence"][-1]["tag"] == "demo"
    # more engagement after the hand-back does not hand it back twice
    again = engagement.ingest([_event(v.REPLY, message, at + timedelta(minutes=20))])
    assert again.requalified == []
    assert len(_all(engine, Handoff)) == 1


def test_a_poor_fit_is_not_requalified_however_high_the_score(
    engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    enroll(engine, "anon@acme.example", first_name="A")  # a name and nothing else: grade D
    clock = FixedClock(SENT_AT)
    dispatcher(engine, settings, clock).run_once()
    (message,) = _all(engine, Message)
    engagement = Engagement(engine, settings, SLA, clock)
    result = engagement.ingest(
        [
            _event(v.DEMO_REQUEST, message, SENT_AT),
            _event(v.REPLY, message, SENT_AT),
            _event(v.REPLY, message, SENT_AT + timedelta(hours=1)),
        ]
    )
    assert result.requalified == []
    assert _lead(engine).score >= 60
    assert _lead(engine).stage == "recycled"


def test_scoring_stops_after_an_objection(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    with engine.begin() as connection:
        connection.execute(
            update(Lead.__table__).values(scoring_stopped_at=clock.now())  # type: ignore[attr-defined]
        )
    result = engagement.ingest([_event(v.REPLY, message, clock.now())])
    assert result.stored == 1
    assert _lead(engine).score == 0


def test_recycling_again_resets_the_score_and_keeps_the_history(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    engagement.ingest([_event(v.REPLY, message, clock.now())])
    assert _lead(engine).score == pytest.approx(25)
    enroll(engine, "jane@acme.example", stage="sql", reason="bad_timing")
    assert _lead(engine).score == 0
    reasons = [(c.delta, c.reason) for c in _all(engine, ScoreChange)]
    assert reasons[-1] == (pytest.approx(-25), "reset on recycle (kept in history)")


def test_received_at_is_the_clocks_time(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    engagement.ingest([_event(v.OPEN, message, datetime(2026, 11, 25, tzinfo=UTC))])
    (event,) = _all(engine, Event)
    assert event.received_at == clock.now()


def test_a_complaint_past_the_breaker_pauses_the_campaign(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    settings = engagement.settings
    strict = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"breaker_min_sample": 1})}
    )
    result = Engagement(engine, strict, SLA, clock).ingest(
        [_event(v.COMPLAINT, message, clock.now())]
    )
    assert result.suppressed == ["jane@acme.example"]
    assert result.paused == ["lost-sql-winback"]
    with Session(engine) as session:
        (pause,) = session.exec(select(CampaignPause)).all()
        assert pause.campaign_id == "lost-sql-winback"
        assert "complaint" in pause.reason


def test_an_open_does_not_run_the_breaker(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    assert engagement.ingest([_event(v.OPEN, message, clock.now())]).paused == []


@pytest.mark.parametrize("x_message_id", ["W86EgYT6SQKk0lRflfLRsA", "14c5d75ce93.dfd.64b469"])
def test_an_event_without_our_uid_is_matched_by_the_x_message_id_whole(
    engine: Engine, sent: Any, x_message_id: str
) -> None:
    """SendGrid's sg_message_id is `<X-Message-Id>.filter…`; the parser cuts `.filter…` off. Older
    X-Message-Ids hold dots themselves, so the id is matched whole, not cut at its first dot."""
    from dripengine.providers.sendgrid.events import parse_event

    engagement, clock, message = sent
    with engine.begin() as connection:
        connection.execute(
            update(Message.__table__).values(provider_message_id=x_message_id)  # type: ignore[attr-defined]
        )
    item = {
        "event": "open",
        "email": "jane@acme.example",
        "timestamp": int(clock.now().timestamp()),
        "sg_event_id": f"ev-{x_message_id}",
        "sg_message_id": f"{x_message_id}.filterdrecv-p3mdgm1-5d8f9fd5f7-2.0",
    }
    event = parse_event(item)
    assert event is not None and event.message_uid is None
    engagement.ingest([event])
    (stored,) = [e for e in _all(engine, Event) if e.type == v.OPEN]
    assert stored.message_id == message.id


# Found by the scale-out test (tests/test_scale_out_pg.py): with several servers, and with
# SendGrid's retries, events do arrive out of time order. The daily cap of a late event's own day
# now counts it; how much a late event weighs is an open question (strict xfail: a change of the
# rule makes it pass and must drop the mark).


@pytest.mark.xfail(
    strict=True,
    reason="spec question: an event older than the lead's score is added undecayed at the "
    "score's time (engagement/rescore.py), so a late event weighs more than one in time order",
)
def test_a_late_event_weighs_what_it_would_have_weighed_in_time_order(
    engine: Engine, sent: Any
) -> None:
    engagement, clock, message = sent
    at = clock.now()
    engagement.ingest([_event(v.OPEN, message, at + timedelta(days=2))])  # arrives first
    engagement.ingest(
        [_event(v.CLICK, message, at, url="https://x.example/p", tag="pricing")]  # 20, 2 days older
    )
    # in time order: the click's 20 points decay for two days (half-life 45), then the open's 1
    assert _lead(engine).score == pytest.approx(20 * 0.5 ** (2 / 45) + 1, rel=1e-9)  # now: 21


def test_late_events_keep_to_the_daily_cap_of_their_own_day(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    engagement.ingest([_event(v.OPEN, message, at + timedelta(days=1))])  # the next day's, first
    for minute in range(4):  # then four opens of the day before, one post each
        engagement.ingest([_event(v.OPEN, message, at + timedelta(minutes=minute))])
    # 3 of the day before (its cap) and 1 of the next day; now all 5 count
    assert len(_all(engine, ScoreChange)) == 4
