"""The CRM handoff: signed bodies, backoff, and delivery to a real HTTP receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.clock import FixedClock
from dripengine.config import Settings
from dripengine.handoff import body as handoff
from dripengine.handoff.delivery import HandoffDelivery, configuration_problem
from dripengine.storage.engine import make_engine
from dripengine.storage.handoffs import HANDOFF
from dripengine.testing.crm_receiver import CRMReceiver
from tests import rows

SECRET = "crm-shared-secret-0123456789"
T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def settings(url: str | None, secret: str | None = SECRET, **crm: object) -> Settings:
    return Settings.model_validate({"crm": {"webhook_url": url, "webhook_secret": secret, **crm}})


def handoff_row(engine: Engine, handoff_id: int) -> dict[str, object]:
    with engine.connect() as connection:
        row = connection.execute(select(HANDOFF).where(HANDOFF.c.id == handoff_id)).one()
    return dict(row._mapping)


# -- pure ----------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"handoff_id":"abc"}'
    expected = hmac.new(SECRET.encode(), b"1795430400." + body, hashlib.sha256).hexdigest()
    assert handoff.signature(SECRET, 1795430400, body) == f"sha256={expected}"
    assert handoff.verify(SECRET, "1795430400", body, f"sha256={expected}", now=1795430400)
    tampered = body.replace(b"abc", b"abd")
    assert not handoff.verify(SECRET, "1795430400", tampered, f"sha256={expected}", now=1795430400)
    assert not handoff.verify(
        SECRET, "1795430400", body, f"sha256={expected}", now=1795430400 + 301
    ), "an old timestamp is a replay"


def test_body_carries_the_payload_and_the_handoff_id() -> None:
    document = json.loads(
        handoff.body("u1", {"lead": {"email": "a@b.example"}, "score": 70}, {"score": 1, "x": T})
    )
    assert document == {
        "score": 70,
        "x": T.isoformat(),
        "lead": {"email": "a@b.example"},
        "handoff_id": "u1",
    }


def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    rng = random.Random(7)
    for attempts in range(1, 30):
        ceiling = min(600.0, 30 * 2 ** (attempts - 1))
        for _ in range(50):
            wait = handoff.backoff(attempts, 600, rng).total_seconds()
            assert ceiling / 2 <= wait <= ceiling
    waits = {handoff.backoff(3, 3600, rng) for _ in range(20)}
    assert len(waits) > 1, "jitter: workers that failed together do not retry together"


def test_configuration_problems_name_the_setting() -> None:
    assert "crm.webhook_url" in (configuration_problem(settings(None)) or "")
    assert "DRIP_CRM_WEBHOOK_SECRET" in (configuration_problem(settings("http://x", None)) or "")
    assert configuration_problem(settings("http://127.0.0.1:1/x")) is None


# -- delivery over real HTTP ------------------------------------------------------------------


def test_retried_until_2xx_then_delivered_once(engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    row_id, uid = rows.handoff(engine, lead_id, T)
    clock = FixedClock(T)
    with CRMReceiver(SECRET) as crm:
        crm.answers.extend([500, 500])
        delivery = HandoffDelivery(engine, settings(crm.url), clock, rng=random.Random(1))
        try:
            first = delivery.deliver_due()
            assert (first.delivered, first.failed) == (0, 1)
            row = handoff_row(engine, row_id)
            assert row["status"] == "pending" and row["attempts"] == 1
            assert "HTTP 500" in str(row["last_error"])
            assert isinstance(row["next_attempt_at"], datetime) and row["next_attempt_at"] > T
            assert delivery.deliver_due().delivered == 0, "not due again before its backoff"
            assert len(crm.requests) == 1
            for _ in range(2):
                clock.advance(timedelta(hours=2))
                delivery.deliver_due()
            clock.advance(timedelta(hours=2))
            assert delivery.deliver_due().delivered == 0, "delivered rows are not sent again"
        finally:
            delivery.close()
    assert [r.status for r in crm.requests] == [500, 500, 200]
    assert [b["handoff_id"] for b in crm.accepted] == [uid]
    body = crm.accepted[0]
    assert body["recycle"]["reason"] == "no_budget" and body["days_in_nurture"] == 41
    assert body["evidence"][0]["tag"] == "pricing" and body["fit_grade"] == "B"
    row = handoff_row(engine, row_id)
    assert row["status"] == "delivered" and row["attempts"] == 3
    assert row["delivered_at"] == T + timedelta(hours=4) and row["last_error"] is None
    # every attempt of one handoff carries the same id; the signature header is per attempt
    assert {json.loads(r.body)["handoff_id"] for r in crm.requests} == {uid}


def test_receiver_down_keeps_the_handoff_pending_with_the_error(engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    row_id, _ = rows.handoff(engine, lead_id, T)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delivery = HandoffDelivery(engine, settings(f"http://127.0.0.1:{port}/crm"), FixedClock(T))
    try:
        tally = delivery.deliver_due()
    finally:
        delivery.close()
    assert (tally.delivered, tally.failed) == (0, 1)
    row = handoff_row(engine, row_id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "refused" in str(row["last_error"]).lower()
    assert isinstance(row["next_attempt_at"], datetime)
    assert T + timedelta(seconds=15) <= row["next_attempt_at"] <= T + timedelta(seconds=30)


def test_a_wrong_secret_is_refused_by_the_crm_and_retried(engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    row_id, _ = rows.handoff(engine, lead_id, T)
    with CRMReceiver("the-crm-has-another-secret") as crm:
        delivery = HandoffDelivery(engine, settings(crm.url), FixedClock(T))
        try:
            delivery.deliver_due()
        finally:
            delivery.close()
    assert [r.status for r in crm.requests] == [401] and not crm.accepted
    row = handoff_row(engine, row_id)
    assert row["status"] == "pending" and "HTTP 401" in str(row["last_error"])


def test_without_a_url_nothing_is_tried(engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    row_id, _ = rows.handoff(engine, lead_id, T)
    tally = HandoffDelivery(engine, settings(None), FixedClock(T)).deliver_due()
    assert tally.skipped and "crm.webhook_url" in tally.skipped
    row = handoff_row(engine, row_id)
    assert row["status"] == "pending" and row["attempts"] == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_deliverers_racing_deliver_each_handoff_once(db_url: str, engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    uids = {rows.handoff(engine, lead_id, T)[1] for _ in range(60)}
    with CRMReceiver(SECRET, delay=0.005) as crm:
        config = settings(crm.url)
        barrier = threading.Barrier(2)
        tallies = []

        def work() -> None:
            own = make_engine(db_url)
            delivery = HandoffDelivery(own, config, FixedClock(T))
            barrier.wait()
            try:
                tallies.append(delivery.deliver_due())
            finally:
                delivery.close()
                own.dispose()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    accepted = [b["handoff_id"] for b in crm.accepted]
    assert sorted(accepted) == sorted(uids), "every handoff once, none twice"
    assert len(crm.requests) == 60
    assert all(t.delivered > 0 for t in tallies), "both workers took a share"
    with engine.connect() as connection:
        states = connection.execute(select(HANDOFF.c.status, HANDOFF.c.attempts)).all()
    assert set(states) == {("delivered", 1)}


def test_a_url_without_a_secret_is_said_not_silently_skipped(engine: Engine) -> None:
    from dripengine.daemon.housekeeping import run_housekeeping

    lead_id = rows.lead(engine, "jane@acme.example", T)
    rows.handoff(engine, lead_id, T)
    done = run_housekeeping(engine, settings("http://127.0.0.1:9/crm", None), FixedClock(T))
    assert done.lines() == [
        "handoffs not sent: crm.webhook_secret is not set (DRIP_CRM_WEBHOOK_SECRET): handoffs are "
        "only sent signed; set a secret of at least 16 characters and give it to the CRM"
    ]
    assert run_housekeeping(engine, settings(None), FixedClock(T)).lines() == []
