"""`drip serve` as a user runs it: a subprocess on a loopback port over a `drip init` folder whose
leads were recycled and sent their first email; SendGrid-shaped, really signed (ECDSA P-256)
posts over real HTTP; SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url

from dripengine.storage.engine import make_engine
from dripengine.storage.models import Enrollment, Event, Lead, Message, ScoreChange, Suppression
from dripengine.testing.sendgrid_webhook import Signer, sendgrid_event
from dripengine.testing.serve_process import ServeProcess
from tests.conftest import PG_ENV, cloned_database

pytestmark = pytest.mark.slow  # `drip serve` subprocesses

SECRET = "inbound-secret-0123456789"
WEBHOOK = "/webhooks/sendgrid"
INBOUND = "/webhooks/sendgrid/inbound"


@dataclass
class Site:
    folder: Path
    engine: Engine
    server: ServeProcess
    signer: Signer
    messages: dict[str, str]  # lead email -> message uid

    def signed(self, body: bytes, *, age: int = 0) -> dict[str, str]:
        return self.signer.headers(body, timestamp=int(time.time()) - age)

    def post_events(self, events: Any, *, age: int = 0) -> tuple[int, dict[str, Any]]:
        body = json.dumps(events).encode()
        response = self.server.post(WEBHOOK, body, self.signed(body, age=age))
        return response.status, response.json()

    def count(self, query: Any) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_") or k == PG_ENV}
    return {**env, **extra}


def _drip(folder: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _a_past_monday() -> datetime:
    day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=14)
    return day - timedelta(days=day.weekday())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _pg_template: str | None,
) -> Iterator[Site]:
    """A `drip init` folder: leads imported and recycled two weeks ago, first emails sent that
    Wednesday (outbox); `drip serve` over it with a SendGrid public key and an inbound secret."""
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    extra: dict[str, str] = {}
    stack = ExitStack()
    if request.param == "postgres":
        admin_url = os.environ.get(PG_ENV)
        if not admin_url or _pg_template is None:
            pytest.skip(f"PostgreSQL tests need {PG_ENV}")
        url = cloned_database(admin_url, _pg_template, "drip_serve")
        extra["DRIP_DATABASE_URL"] = stack.enter_context(url)
    env = _clean_env(**extra)
    folder = tmp / "acme-drip"
    _drip(tmp, env, "init", str(folder))
    monday = _a_past_monday()
    _drip(folder, env, "--now", monday.isoformat(), "leads", "import", "leads.csv")
    _drip(folder, env, "--now", monday.isoformat(), "recycle", "--csv", "lost-deals.csv")
    _drip(
        folder,
        env,
        "--now",
        monday.isoformat(),
        "recycle",
        "jane@acme.example",
        "--from",
        "sql",
        "--reason",
        "no_budget",
    )
    _drip(folder, env, "--now", (monday + timedelta(days=2, hours=5)).isoformat(), "run", "--once")
    engine = make_engine(extra.get("DRIP_DATABASE_URL") or f"sqlite:///{folder / 'drip.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            select(Lead.email, Message.uid).join(Message, Message.lead_id == Lead.id)  # type: ignore[arg-type]
        ).all()
    messages = {email: uid for email, uid in rows}
    assert len(messages) >= 4, messages
    signer = Signer.generate()
    server = ServeProcess(
        folder,
        env={
            **env,
            "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
            "DRIP_WEBHOOKS_INBOUND_SECRET": SECRET,
        },
    ).start()
    try:
        yield Site(folder, engine, server, signer, messages)
    finally:
        server.stop()
        engine.dispose()
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _events_for(uid: str, email: str, now: int) -> list[dict[str, Any]]:
    """One of every SendGrid event type for one message, as SendGrid would post them."""
    message_id = f"{uid[:20]}.filterdrecv-7d8c9f-x1-1-6390D3C9-2.0"

    def event(name: str, at: int, **fields: Any) -> dict[str, Any]:
        return sendgrid_event(
            name, timestamp=at, uid=uid, email=email, sg_message_id=message_id, **fields
        )

    return [
        event("processed", now - 600),
        event("deferred", now - 590),
        event("delivered", now - 580),
        event("open", now - 500, sg_machine_open=True),
        event("open", now - 400),
        event("click", now - 300),
        event("group_unsubscribe", now - 250),
        event("group_resubscribe", now - 240),
        event("bounce", now - 230, type="blocked", reason="452 mailbox full"),
        event("dropped", now - 220),
        event("spamreport", now - 210),
        event("unsubscribe", now - 200),
        event("bounce", now - 100),
    ]


def _event_count(site: Site, uid: str) -> int:
    return site.count(
        select(func.count())
        .select_from(Event)
        .join(Message, Event.message_id == Message.id)  # type: ignore[arg-type]
        .where(Message.uid == uid)
    )


def test_every_event_type_posted_three_times_is_stored_once(site: Site) -> None:
    email = "bob.miller@northwind.example"
    uid = site.messages[email]
    batch = _events_for(uid, email, int(time.time()))
    answers = [site.post_events(batch) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    first, second, third = (body for _, body in answers)
    assert first["received"] == len(batch) and first["skipped"] == 0
    assert first["stored"] == len(batch) and first["duplicates"] == 0
    assert second["stored"] == 0 and second["duplicates"] == len(batch)
    assert third == second
    assert _event_count(site, uid) == len(batch)
    with site.engine.connect() as connection:
        types = set(
            connection.scalars(
                select(Event.type)
                .join(Message, Event.message_id == Message.id)  # type: ignore[arg-type]
                .where(Message.uid == uid)
            )
        )
        suppressed = connection.execute(select(Suppression).where(Suppression.email == email)).all()
        raw = connection.scalar(
            select(Event.raw)
            .join(Message, Event.message_id == Message.id)  # type: ignore[arg-type]
            .where(Message.uid == uid, Event.type == "click")
        )
        statuses = set(
            connection.scalars(
                select(Enrollment.status)
                .join(Lead, Enrollment.lead_id == Lead.id)  # type: ignore[arg-type]
                .where(Lead.email == email)
            )
        )
    assert types == {
        "processed",
        "deferred",
        "delivered",
        "open",
        "click",
        "group_unsubscribe",
        "group_resubscribe",
        "soft_bounce",
        "dropped",
        "complaint",
        "unsubscribe",
        "bounce",
    }
    assert len(suppressed) == 1  # the first opt-out suppressed the address; the rest found it so
    assert statuses == {"exited"}
    assert raw["url"].startswith("https://acme.example/pricing")  # the raw payload is kept


def test_copies_under_new_event_ids_are_duplicates_too(site: Site) -> None:
    email = "priya.nair@bluepeak.example"
    uid = site.messages[email]
    now = int(time.time())
    original = sendgrid_event(
        "open", timestamp=now, uid=uid, email=email, sg_message_id="K1.filter0"
    )
    copy = {**original, "sg_event_id": "a-different-id"}
    assert site.post_events([original])[1]["stored"] == 1
    assert site.post_events([copy])[1] == {
        "received": 1,
        "stored": 0,
        "duplicates": 1,
        "unmatched": 0,
        "skipped": 0,
    }


def test_events_for_unknown_messages_are_accepted(site: Site) -> None:
    event = sendgrid_event(
        "delivered", timestamp=int(time.time()), uid="f" * 32, email="nobody@else.example"
    )
    status, body = site.post_events([event])
    assert status == 200 and body["unmatched"] == 1


def test_unknown_types_and_wrong_field_types_are_skipped_and_counted(site: Site) -> None:
    email = "amelie.laurent@lumiere.example"
    uid = site.messages[email]
    now = int(time.time())
    good = sendgrid_event("delivered", timestamp=now, uid=uid, email=email)
    batch = [
        sendgrid_event("exploded", timestamp=now, uid=uid),
        {**good, "sg_event_id": "x1", "timestamp": "yesterday"},
        {**good, "sg_event_id": "x2", "email": 42},
        "not an event",
        good,
        sendgrid_event("click", timestamp=now, uid=uid, email=email, url={"not": "a string"}),
    ]
    status, body = site.post_events(batch)
    assert status == 200
    assert body["received"] == 6 and body["stored"] == 1 and body["skipped"] == 5
    assert [s["index"] for s in body["skipped_events"]] == [0, 1, 2, 3, 5]
    assert 'unknown event type "exploded"' in body["skipped_events"][0]["reason"]
    assert site.server.healthy()


def test_a_nul_or_an_over_long_id_costs_one_event_not_the_batch(site: Site) -> None:
    """Issue 12, finding 5: PostgreSQL refused the whole batch (503, redelivered for 24 h, the
    bounce inside never recorded) for one NUL or over-long value; SQLite stored it."""
    email = "bob.miller@northwind.example"
    uid = site.messages[email]
    now = int(time.time())
    batch = [
        sendgrid_event("delivered", timestamp=now, uid=uid, email=email, sg_event_id="ok-1"),
        sendgrid_event("open", timestamp=now, uid=uid, email=email, sg_event_id="x" * 300),
        sendgrid_event("open", timestamp=now, uid=uid, email=email, sg_event_id="nul\x00id"),
        # the bounce's reason carries a NUL: kept without it, and the address is suppressed
        sendgrid_event(
            "bounce",
            timestamp=now,
            uid=uid,
            email=email,
            sg_event_id="bounce-1",
            reason="550 5.1.1 no such user\x00",
            type="bounce",
            extra={"note\x00": "a\x00b"},
        ),
    ]
    status, body = site.post_events(batch)
    assert status == 200, body
    assert (body["received"], body["stored"], body["skipped"]) == (4, 2, 2)
    assert [s["index"] for s in body["skipped_events"]] == [1, 2]
    assert "sg_event_id: longer than 200 characters" in body["skipped_events"][0]["reason"]
    assert body["skipped_events"][1]["reason"] == "sg_event_id contains a NUL character; remove it"
    with site.engine.connect() as connection:
        detail, raw = connection.execute(
            select(Event.detail, Event.raw).where(Event.provider_event_id == "bounce-1")
        ).one()
        suppressed = connection.scalar(
            select(func.count()).select_from(Suppression).where(Suppression.email == email)
        )
    assert "\x00" not in (detail or "") and "no such user" in (detail or "")
    assert raw["extra"] == {"note": "ab"}
    assert suppressed == 1
    assert site.server.healthy()


def _refused(site: Site, body: bytes, headers: dict[str, str], status: int) -> str:
    before = site.count(select(func.count()).select_from(Event))
    response = site.server.post(WEBHOOK, body, headers)
    assert response.status == status, response.data
    assert site.count(select(func.count()).select_from(Event)) == before  # nothing stored
    assert site.server.healthy()
    return str(response.json()["error"])


def _one_event(site: Site) -> bytes:
    uid = site.messages["jane@acme.example"]
    return json.dumps([sendgrid_event("open", timestamp=int(time.time()), uid=uid)]).encode()


def test_a_bad_or_missing_signature_is_403(site: Site) -> None:
    body = _one_event(site)
    headers = site.signed(body)
    tampered = body.replace(b'"open"', b'"click"')
    assert "does not match" in _refused(site, tampered, headers, 403)
    other = Signer.generate().headers(body, timestamp=int(time.time()))
    assert "does not match" in _refused(site, body, other, 403)
    assert "missing" in _refused(site, body, {"Content-Type": "application/json"}, 403)
    garbage = {**headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
    assert "does not match" in _refused(site, body, garbage, 403)
    one_char = headers["X-Twilio-Email-Event-Webhook-Signature"]
    flipped = one_char[:10] + ("A" if one_char[10] != "A" else "B") + one_char[11:]
    forged = {**headers, "X-Twilio-Email-Event-Webhook-Signature": flipped}
    assert "does not match" in _refused(site, body, forged, 403)


def test_a_stale_or_future_timestamp_is_403(site: Site) -> None:
    body = _one_event(site)
    assert "s old" in _refused(site, body, site.signed(body, age=3600), 403)
    assert "in the future" in _refused(site, body, site.signed(body, age=-3600), 403)
    # the signature covers the timestamp: a fresh timestamp on an old signature does not pass
    old = site.signed(body, age=3600)
    old["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()))
    assert "does not match" in _refused(site, body, old, 403)


def test_malformed_json_and_a_non_array_are_400(site: Site) -> None:
    for body in (b'[{"event": "open",', b'{"event": "open"}', b"\xff\xfe[]"):
        assert _refused(site, body, site.signed(body), 400)
    # unsigned, it is refused on its headers before its body is read
    assert "missing" in _refused(site, b"\xff\xfe[]", {}, 403)


def test_a_body_over_the_size_limit_is_413_without_reading_it(site: Site) -> None:
    body = b"[" + b" " * 5_000_001 + b"]"
    assert "larger than" in _refused(site, body, site.signed(body), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: read only up to the limit
        yield b"["
        for _ in range(600):
            yield b" " * 10_000
        yield b"]"

    fresh = site.signed(b"[]")  # headers that pass the pre-check: the size is what refuses it
    response = site.server.post(WEBHOOK, chunks(), fresh, chunked=True)  # type: ignore[arg-type]
    assert response.status == 413
    unsigned = {"Content-Type": "application/json"}
    response = site.server.post(WEBHOOK, chunks(), unsigned, chunked=True)  # type: ignore[arg-type]
    assert response.status == 403  # refused on its headers, before a byte of it is read
    assert site.server.healthy()


def _compact(n: int, now: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "email": f"{prefix}{i}@nowhere.example",
            "timestamp": now,
            "event": "delivered",
            "sg_event_id": f"{prefix}-{i}",
            "sg_message_id": f"{prefix}{i}.filter0",
        }
        for i in range(n)
    ]


def test_ten_thousand_events_are_taken_and_one_more_is_413(site: Site) -> None:
    now = int(time.time())
    status, body = site.post_events(_compact(10_000, now, f"bulk{uuid.uuid4().hex[:6]}-"))
    assert status == 200, body
    assert body["received"] == 10_000 and body["stored"] == 10_000
    status, body = site.post_events(_compact(10_001, now, "over-"))
    assert status == 413 and "webhooks.max_events is 10000" in body["error"]
    assert site.server.healthy()


def _inbound_fields(**fields: str) -> dict[str, str]:
    return {
        "from": "Jane Doe <jane@acme.example>",
        "to": "sales@reply.acme.example",
        "subject": "Re: Hi",
        "text": "Yes, let's talk next week.",
        "envelope": json.dumps({"to": ["sales@reply.acme.example"], "from": "jane@acme.example"}),
        "charsets": json.dumps(
            {"to": "UTF-8", "text": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}
        ),
        "spam_score": "0.1",
        "SPF": "pass",
        "dkim": "{@acme.example : pass}",
        **fields,
    }


def _headers(uid: str, *extra: str) -> str:
    return (
        "\r\n".join(
            [
                "From: Jane Doe <jane@acme.example>",
                "To: sales@reply.acme.example",
                "Subject: Re: Hi",
                f"Message-ID: <{uuid.uuid4().hex}@mail.acme.example>",
                f"In-Reply-To: <{uid}@acme.example>",
                f"References: <older@elsewhere.example> <{uid}@acme.example>",
                *extra,
            ]
        )
        + "\r\n"
    )


def _inbound(site: Site, fields: dict[str, str], path: str = INBOUND + "/" + SECRET) -> Any:
    return site.server.http.request("POST", site.server.url + path, fields=fields)


def test_a_reply_is_matched_to_its_message(site: Site) -> None:
    uid = site.messages["jane@acme.example"]
    fields = _inbound_fields(headers=_headers(uid))
    response = _inbound(site, fields)
    assert response.status == 200, response.data
    assert response.json() == {
        "type": "reply",
        "matched": True,
        "message": True,
        "stored": 1,
        "duplicates": 0,
    }
    assert _inbound(site, fields).json()["duplicates"] == 1  # Inbound Parse retried it
    with site.engine.connect() as connection:
        detail = connection.scalar(
            select(Event.detail)
            .join(Message, Event.message_id == Message.id)  # type: ignore[arg-type]
            .where(Message.uid == uid, Event.type == "reply")
        )
    assert detail == "Re: Hi"


def test_an_out_of_office_is_an_auto_reply(site: Site) -> None:
    uid = site.messages["jane@acme.example"]
    for extra, subject in (
        (("Auto-Submitted: auto-replied",), "Re: Hi"),
        ((), "Abwesenheitsnotiz: Hi"),
    ):
        headers = _headers(uid, *extra).replace("Subject: Re: Hi", f"Subject: {subject}")
        response = _inbound(site, _inbound_fields(headers=headers, subject=subject))
        assert response.json()["type"] == "auto_reply"


def test_a_forged_or_spammy_reply_is_kept_but_scores_and_exits_nothing(site: Site) -> None:
    """Issue 12: Inbound Parse's SPF / dkim / spam_score decide whether a reply counts."""
    others = [e for e in sorted(site.messages) if e != "jane@acme.example"]
    cases = [
        {"SPF": "fail", "dkim": "{@acme.example : fail}"},
        {"SPF": "softfail", "dkim": "{@attacker.example : pass}"},
        {"SPF": "pass", "spam_score": "9.8"},
        # SPF passed for the attacker's own return path, not for the From domain
        {"SPF": "pass", "dkim": "none", "envelope": json.dumps({"from": "b@attacker.example"})},
    ]
    assert others

    def lead_state(email: str) -> tuple[float, int, list[str]]:
        with site.engine.connect() as connection:
            lead_id, score = connection.execute(
                select(Lead.id, Lead.score).where(Lead.email == email)
            ).one()
            changes = connection.scalar(
                select(func.count()).select_from(ScoreChange).where(ScoreChange.lead_id == lead_id)
            )
            statuses = list(
                connection.scalars(select(Enrollment.status).where(Enrollment.lead_id == lead_id))
            )
        return score, changes or 0, statuses

    reasons = []
    for index, auth in enumerate(cases):
        email = others[index % len(others)]
        uid = site.messages[email]
        before = lead_state(email)
        headers = _headers(uid).replace("jane@acme.example", email).replace("Jane Doe", "X")
        response = _inbound(site, _inbound_fields(headers=headers, **{"from": email}, **auth))
        assert response.status == 200, response.data
        assert response.json()["type"] == "unverified_reply", (auth, response.json())
        assert response.json()["stored"] == 1, (auth, response.json())
        assert lead_state(email) == before  # no points, no exit
        with site.engine.connect() as connection:
            raw = connection.scalar(  # this post's: the newest unverified reply to the message
                select(Event.raw)
                .join(Message, Event.message_id == Message.id)  # type: ignore[arg-type]
                .where(Message.uid == uid, Event.type == "unverified_reply")
                .order_by(Event.id.desc())  # type: ignore[union-attr]
                .limit(1)
            )
            assert raw is not None
        reasons.append(str(raw["authentication"]))
    assert all(r.startswith("not counted: ") for r in reasons), reasons
    assert "SPF fail" in reasons[0]
    assert "no DKIM pass aligned with " + others[1].partition("@")[2] in reasons[1]
    assert "spam score 9.8 (limit 5)" in reasons[2]
    assert "SPF pass for attacker.example, not aligned with " in reasons[3]


def test_the_inbound_secret_is_required_and_basic_auth_works(site: Site) -> None:
    uid = site.messages["jane@acme.example"]
    fields = _inbound_fields(headers=_headers(uid))
    assert _inbound(site, fields, INBOUND).status == 403
    assert _inbound(site, fields, INBOUND + "/wrong-secret-0123456789").status == 403
    token = base64.b64encode(f"drip:{SECRET}".encode()).decode()
    response = site.server.http.request(
        "POST",
        site.server.url + INBOUND,
        fields=fields,
        headers={"Authorization": f"Basic {token}"},
    )
    assert response.status == 200


def test_an_unmatched_reply_is_200_and_counted(site: Site) -> None:
    headers = "From: stranger@else.example\r\nSubject: hello\r\nMessage-ID: <s1@else.example>\r\n"
    response = _inbound(site, _inbound_fields(headers=headers, **{"from": "stranger@else.example"}))
    assert response.status == 200
    assert response.json()["matched"] is False


def test_not_an_inbound_post_is_400(site: Site) -> None:
    assert _inbound(site, {"subject": "no headers"}).status == 400
    response = site.server.post(INBOUND + "/" + SECRET, b"plain", {"Content-Type": "text/plain"})
    assert response.status == 400
    assert site.server.healthy()


# -- start-up ------------------------------------------------------------------------------------


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    env = _clean_env()
    _drip(tmp_path, env, "init", "f")
    return tmp_path / "f"


def test_without_a_public_key_the_webhook_answers_503_and_says_which_setting(bare: Path) -> None:
    with ServeProcess(bare, env=_clean_env()) as server:
        response = server.post(WEBHOOK, b"[]", {"Content-Type": "application/json"})
        assert response.status == 503
        assert "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["error"]
    assert "answers 503 until webhooks.sendgrid_public_key" in server.log()


def test_with_verification_off_unsigned_events_are_taken(bare: Path) -> None:
    env = _clean_env(DRIP_WEBHOOKS_VERIFY_SIGNATURES="false")
    with ServeProcess(bare, env=env) as server:
        body = json.dumps([sendgrid_event("open", timestamp=int(time.time()))]).encode()
        response = server.post(WEBHOOK, body, {"Content-Type": "application/json"})
        assert response.status == 200 and response.json()["stored"] == 1


def test_a_public_key_that_is_not_one_stops_drip_serve_with_one_line(bare: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dripengine", "serve", "--port", "1"],
        cwd=bare,
        env=_clean_env(DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY="bm90IGEga2V5"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "Error: webhooks.sendgrid_public_key (DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY) is not a public key"
        )
    )


@pytest.mark.postgres
def test_database_down_is_503_so_sendgrid_retries(tmp_path: Path, _pg_template: str | None) -> None:
    admin_url = os.environ.get(PG_ENV)
    if not admin_url or _pg_template is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    name = f"drip_down_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    env = _clean_env(DRIP_DATABASE_URL=url, DRIP_WEBHOOKS_VERIFY_SIGNATURES="false")
    _drip(tmp_path, env, "init", "f")
    try:
        with ServeProcess(tmp_path / "f", env=env) as server:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            body = json.dumps([sendgrid_event("open", timestamp=int(time.time()))]).encode()
            response = server.post(WEBHOOK, body, {"Content-Type": "application/json"})
            assert response.status == 503
            assert response.json() == {"error": "database unavailable; retry later"}
            # the process is up, and its health check says what is wrong: a load balancer can tell
            health = server.http.request("GET", server.url + "/healthz", timeout=10.0)
            assert health.status == 503
            assert health.json()["database"] == "failed"
            assert server.process is not None and server.process.poll() is None
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
