"""SendGrid messages a crash left ``unknown``: resolved by their events, or failed past the grace
period while the Event Webhook is known to deliver — never resent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine import vocabulary as v
from dripengine.clock import FixedClock
from dripengine.engagement.ingest import Engagement
from dripengine.providers.sendgrid.unknown import settle_unknown
from dripengine.storage.models import Message
from dripengine.vocabulary import IncomingEvent
from tests.test_dispatcher import MONDAY, SLA, dispatcher, enroll, make_settings

SENT_AT = MONDAY + timedelta(days=2, hours=5)


def _crashed(engine: Engine, tmp_path: Path) -> tuple[Any, list[Message]]:
    """Two leads sent an email, then both messages left unknown as by a crash mid-call."""
    settings = make_settings(tmp_path)
    for name in ("jane", "john"):
        enroll(engine, f"{name}@acme.example", first_name=name.title(), timezone="Europe/Berlin")
    assert dispatcher(engine, settings, FixedClock(SENT_AT)).run_once().sent == 2
    with engine.begin() as connection:
        connection.execute(
            update(Message.__table__).values(status="unknown", provider="sendgrid")  # type: ignore[attr-defined]
        )
    return settings, _messages(engine)


def _messages(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).order_by(Message.id)))


def _event(kind: str, uid: str | None, at: Any, email: str | None = None) -> IncomingEvent:
    return IncomingEvent(
        type=kind, occurred_at=at, provider="sendgrid", message_uid=uid, email=email
    )


def test_an_event_resolves_it_and_silence_past_the_grace_period_fails_it(
    engine: Engine, tmp_path: Path
) -> None:
    settings, (jane, _john) = _crashed(engine, tmp_path)
    clock = FixedClock(SENT_AT + timedelta(minutes=5))
    Engagement(engine, settings, SLA, clock).ingest([_event(v.PROCESSED, jane.uid, SENT_AT)])
    assert [m.status for m in _messages(engine)] == ["sent", "unknown"]
    # within the grace period nothing is concluded
    assert settle_unknown(engine, SENT_AT + timedelta(hours=47), 48) == 0
    assert settle_unknown(engine, SENT_AT + timedelta(hours=49), 48) == 1
    after = _messages(engine)
    assert [m.status for m in after] == ["sent", "failed"]
    assert after[1].error is not None and "no SendGrid event" in after[1].error
    assert settle_unknown(engine, SENT_AT + timedelta(hours=60), 48) == 0  # once


def test_without_a_working_webhook_it_stays_unknown(engine: Engine, tmp_path: Path) -> None:
    _crashed(engine, tmp_path)
    assert settle_unknown(engine, SENT_AT + timedelta(days=30), 48) == 0
    assert [m.status for m in _messages(engine)] == ["unknown", "unknown"]


def test_only_sendgrid_messages_are_settled_this_way(engine: Engine, tmp_path: Path) -> None:
    settings, _ = _crashed(engine, tmp_path)
    with engine.begin() as connection:
        connection.execute(
            update(Message.__table__).values(provider="smtp")  # type: ignore[attr-defined]
        )
    clock = FixedClock(SENT_AT + timedelta(minutes=5))
    Engagement(engine, settings, SLA, clock).ingest(
        [_event(v.OPEN, None, SENT_AT, email="someone@else.example")]
    )
    assert settle_unknown(engine, SENT_AT + timedelta(days=3), 48) == 0


def test_housekeeping_settles_through_the_provider_registry_and_says_whose(
    engine: Engine, tmp_path: Path
) -> None:
    from dripengine.daemon.housekeeping import run_housekeeping
    from dripengine.providers import settle_unknown as settle_every_provider

    settings, (jane, _john) = _crashed(engine, tmp_path)
    clock = FixedClock(SENT_AT + timedelta(minutes=5))
    Engagement(engine, settings, SLA, clock).ingest([_event(v.PROCESSED, jane.uid, SENT_AT)])
    assert settle_every_provider(engine, SENT_AT + timedelta(hours=47), 48) == {}
    done = run_housekeeping(engine, settings, FixedClock(SENT_AT + timedelta(hours=49)))
    assert done.settled == {"SendGrid": 1}
    assert done.lines() == [
        "1 SendGrid message(s) left unknown by a crash: no event for them past the grace "
        "period, now failed (see docs/sending.md)"
    ]
