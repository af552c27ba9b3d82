"""The dispatcher against a real database (SQLite and PostgreSQL) and the outbox provider."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine.campaigns import load_campaigns
from dripengine.campaigns.experiment import in_holdout
from dripengine.cli.scaffold import SKELETON
from dripengine.clock import FixedClock
from dripengine.config import Settings, load_settings
from dripengine.funnel.recycle import recycle
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.funnel.sla import load_sla
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.base import Provider, SendResult
from dripengine.providers.outbox import OutboxProvider
from dripengine.sending.dispatcher import Dispatcher
from dripengine.storage.engine import session_scope
from dripengine.storage.models import Enrollment, Lead, Message, Suppression
from dripengine.tokens import unsign

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 Berlin
SLA = load_sla(SKELETON / "sla.yaml")
CAMPAIGNS = load_campaigns(SKELETON / "campaigns", known_reasons=SLA.known_reasons)
SECRET = "dispatcher-test-secret-0123456789"


def make_settings(tmp_path: Path, **sending: object) -> Settings:
    settings = load_settings(SKELETON / "drip.toml", env={"DRIP_SECRET_KEY": SECRET})
    return settings.model_copy(
        update={
            "sending": settings.sending.model_copy(
                update={"outbox_dir": str(tmp_path / "outbox"), **sending}
            ),
        }
    )


def enroll(
    engine: Engine, email: str, *, stage: str = "sql", reason: str = "no_budget", **fields: object
) -> None:
    if fields:
        with session_scope(engine) as session:
            session.add(
                Lead(email=email, stage=stage, created_at=MONDAY, updated_at=MONDAY, **fields)
            )
    recycle(engine, RecycleRequest(email, reason, stage), RecycleContext(CAMPAIGNS, SLA, MONDAY))


def dispatcher(
    engine: Engine, settings: Settings, clock: FixedClock, provider: Provider | None = None
) -> Dispatcher:
    return Dispatcher(
        engine,
        settings,
        CAMPAIGNS,
        SLA,
        provider or OutboxProvider(settings.outbox_dir),
        clock,
        worker="test",
    )


def messages(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).order_by(Message.id)))


def test_due_step_is_sent_once_and_the_enrollment_advances(engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    enroll(engine, "jane@acme.example", first_name="Jane", company="Acme", timezone="Europe/Berlin")
    clock = FixedClock(MONDAY)
    assert dispatcher(engine, settings, clock).run_once().sent == 0  # not due until Tuesday
    clock.current = MONDAY + timedelta(days=1, hours=1)
    tally = dispatcher(engine, settings, clock).run_once()
    assert tally.sent == 1
    assert dispatcher(engine, settings, clock).run_once().sent == 0  # never twice
    [message] = messages(engine)
    assert (message.status, message.step_id, message.subject) == (
        "sent",
        "checkin",
        "Still thinking about Acme?",
    )
    [eml] = list((tmp_path / "outbox").rglob("*.eml"))
    parsed = message_from_bytes(eml.read_bytes(), policy=default)
    assert parsed["To"] == "Jane <jane@acme.example>"
    assert parsed["Message-ID"] == message.provider_message_id
    token = parsed["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert unsign(SECRET, "unsubscribe", token) == message.uid
    assert "Acme GmbH, Example Street 1" in parsed.get_body(("plain",)).get_content()
    with Session(engine) as session:
        enrollment = session.exec(select(Enrollment)).one()
        assert enrollment.current_step != "checkin" and enrollment.next_due_at is not None
        assert enrollment.next_due_at > clock.current and enrollment.lease_owner is None


def test_a_comma_in_a_lead_name_reaches_the_right_address(engine: Engine, tmp_path: Path) -> None:
    """Unquoted, "Jane Doe, Jr. <jane@…>" parses as the address "Jane Doe" (SendGrid refuses it)."""
    enroll(engine, "jane@acme.example", first_name="Jane", last_name="Doe, Jr.")
    enroll(engine, "ann@acme.example", first_name='Ann "AJ"', last_name="Lee")
    clock = FixedClock(MONDAY + timedelta(days=2))
    from dripengine.providers.sendgrid.provider import SendGridProvider
    from dripengine.testing import SendGridStandIn

    with SendGridStandIn(api_key="SG.test-key") as standin:
        provider = SendGridProvider("SG.test-key", host=standin.url, max_in_flight=2)
        try:
            tally = dispatcher(engine, make_settings(tmp_path), clock, provider).run_once()
        finally:
            provider.close()
        recipients = sorted(
            (
                a.payload["personalizations"][0]["to"][0]["email"],
                a.payload["personalizations"][0]["to"][0].get("name"),
            )
            for a in standin.accepted
        )
    assert tally.sent == 2
    assert recipients == [
        ("ann@acme.example", 'Ann "AJ" Lee'),
        ("jane@acme.example", '"Jane Doe, Jr."'),  # quoted: SendGrid refuses a bare comma
    ]


def test_suppressed_lead_exits_and_gets_nothing(engine: Engine, tmp_path: Path) -> None:
    enroll(engine, "gone@acme.example")
    with session_scope(engine) as session:
        session.add(Suppression(email="gone@acme.example", reason="unsubscribe", created_at=MONDAY))
    tally = dispatcher(
        engine, make_settings(tmp_path), FixedClock(MONDAY + timedelta(days=2))
    ).run_once()
    assert (tally.sent, tally.exited) == (0, 1)
    with Session(engine) as session:
        enrollment = session.exec(select(Enrollment)).one()
        assert enrollment.status == "exited" and enrollment.exit_reason.startswith(
            "suppressed: unsubscribe"
        )
    assert not (tmp_path / "outbox").exists()


def test_header_injection_through_lead_data_is_impossible(engine: Engine, tmp_path: Path) -> None:
    enroll(
        engine, "evil@acme.example", first_name="Eve\r\nBcc: victim@example.com", last_name="X\x07"
    )
    tally = dispatcher(
        engine, make_settings(tmp_path), FixedClock(MONDAY + timedelta(days=2))
    ).run_once()
    assert tally.sent == 1
    [eml] = list((tmp_path / "outbox").rglob("*.eml"))
    head = eml.read_bytes().split(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in head and b"victim" not in head.split(b"\r\nTo:")[0]
    parsed = message_from_bytes(eml.read_bytes(), policy=default)
    assert parsed["Bcc"] is None


def test_an_encoded_header_in_lead_data_fails_that_email_only(
    engine: Engine, tmp_path: Path
) -> None:
    """Issue 12: an RFC 2047 word survives one_line (it has no raw line break) but decodes to one."""
    enroll(
        engine, "eve@acme.example", first_name="=?utf-8?q?Eve=0D=0ABcc=3A_victim=40example.com?="
    )
    enroll(engine, "ann@acme.example", first_name="Ann")
    tally = dispatcher(
        engine, make_settings(tmp_path), FixedClock(MONDAY + timedelta(days=2))
    ).run_once()
    assert (tally.sent, tally.failed) == (1, 1)
    failed = [m for m in messages(engine) if m.status == "failed"]
    assert len(failed) == 1 and "inside an RFC 2047 encoded word" in (failed[0].error or "")
    [eml] = list((tmp_path / "outbox").rglob("*.eml"))
    assert b"victim" not in eml.read_bytes() and b"ann@acme.example" in eml.read_bytes()


def test_crash_recovery_uses_the_outbox_evidence(engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    enroll(engine, "a@acme.example")
    enroll(engine, "b@acme.example")
    clock = FixedClock(MONDAY + timedelta(days=2))
    dispatcher(engine, settings, clock).run_once()
    sent = messages(engine)
    assert len(sent) == 2
    # Simulate a worker that died: one message written, one not, both left 'sending'.
    lost = sent[1]
    for eml in (tmp_path / "outbox").rglob(f"{lost.uid}.eml"):
        eml.unlink()
    with session_scope(engine) as session:
        for message in session.exec(select(Message)):
            message.status = "sending"
        for enrollment in session.exec(select(Enrollment)):
            enrollment.next_due_at = clock.current - timedelta(minutes=1)
            enrollment.current_step = "checkin"
    tally = dispatcher(engine, settings, clock).run_once()
    assert tally.recovered == 2
    after = {m.uid: m for m in messages(engine)}
    assert after[sent[0].uid].status == "sent"  # its file was there: not resent
    assert after[lost.uid].status == "sent"  # no file: it had not gone out, so it was sent now
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 2


class FlakyProvider(Provider):
    """Answers 'retry' a number of times, then sends; records every email handed over."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[OutgoingEmail] = []

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.seen += emails
        if self.failures > 0:
            self.failures -= 1
            return [SendResult(e.uid, "retry", error="503 try later") for e in emails]
        return [SendResult(e.uid, "sent", provider_message_id=f"x-{e.uid}") for e in emails]


def test_retry_backs_off_then_sends_the_same_message(engine: Engine, tmp_path: Path) -> None:
    enroll(engine, "r@acme.example")
    clock = FixedClock(MONDAY + timedelta(days=2))
    provider = FlakyProvider(failures=1)
    first = dispatcher(engine, make_settings(tmp_path), clock, provider).run_once()
    assert (first.sent, first.retried) == (0, 1)
    [message] = messages(engine)
    assert message.status == "retry" and message.error == "503 try later"
    assert (
        dispatcher(engine, make_settings(tmp_path), clock, provider).run_once().sent == 0
    )  # backing off
    clock.advance(timedelta(minutes=5))
    assert dispatcher(engine, make_settings(tmp_path), clock, provider).run_once().sent == 1
    [message] = messages(engine)
    assert (message.status, message.attempts) == ("sent", 2)
    assert provider.seen[0].uid == provider.seen[1].uid  # the same message, not a new one


def test_retries_give_up_after_max_attempts(engine: Engine, tmp_path: Path) -> None:
    enroll(engine, "g@acme.example")
    clock = FixedClock(MONDAY + timedelta(days=2))
    provider = FlakyProvider(failures=99)
    settings = make_settings(tmp_path, max_attempts=2)
    for _ in range(3):
        dispatcher(engine, settings, clock, provider).run_once()
        clock.advance(timedelta(hours=1))
    [message] = messages(engine)
    assert message.status == "failed" and message.error.startswith("gave up after 2 attempts")


def test_frequency_cap_spans_campaigns(engine: Engine, tmp_path: Path) -> None:
    enroll(engine, "cap@acme.example")
    settings = make_settings(tmp_path, max_per_lead_per_week=1)
    with session_scope(engine) as session:
        lead = session.exec(select(Lead)).one()
        session.add(
            Message(
                lead_id=lead.id, campaign_id="other", step_id="x", status="sent", created_at=MONDAY
            )
        )
    tally = dispatcher(engine, settings, FixedClock(MONDAY + timedelta(days=2))).run_once()
    assert (tally.sent, tally.waiting) == (0, 1)
    with Session(engine) as session:
        assert session.exec(select(Enrollment)).one().next_due_at >= MONDAY + timedelta(days=7)


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("{{ lead.attributes.plan.name.upper() }}", '"plan" is undefined'),
        # a template reaching for the server (issue 12 item 8): the sandbox fails that email
        (
            "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
            "access to attribute '__init__' of 'type' object is unsafe",
        ),
    ],
)
def test_template_error_fails_that_message_only(
    engine: Engine, tmp_path: Path, broken: str, why: str
) -> None:
    templates = tmp_path / "templates"
    import shutil

    shutil.copytree(SKELETON / "templates", templates)
    checkin = templates / "lost-sql" / "checkin.mjml"
    marker = tmp_path / "pwned"
    broken = broken.replace("MARKER", str(marker))
    checkin.write_text(checkin.read_text().replace("{% endblock %}", broken + "{% endblock %}", 1))
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"templates": str(templates)})}
    )
    enroll(engine, "t1@acme.example")
    enroll(engine, "t2@acme.example", stage="mql", reason="bad_timing")
    tally = dispatcher(engine, settings, FixedClock(MONDAY + timedelta(days=2))).run_once()
    assert (tally.sent, tally.failed) == (1, 1)
    failed = next(m for m in messages(engine) if m.status == "failed")
    assert failed.error.startswith("template error: templates/lost-sql/checkin.mjml:")
    assert why in failed.error
    assert not marker.exists()  # no command ran


def test_sendgrid_provider_end_to_end_each_email_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    from dripengine.providers.sendgrid.provider import SendGridProvider
    from dripengine.testing import SendGridStandIn

    emails = [f"lead{i}@acme.example" for i in range(30)]
    for i, email in enumerate(emails):
        enroll(engine, email, first_name=f"Lead{i}", timezone="Europe/Berlin")
    # the shipped campaign holds 10 % out: those leads are sent nothing, by any provider
    mailed = [e for e in emails if not in_holdout(e, "lost-sql-winback", 0.10)]
    assert 20 <= len(mailed) < 30
    clock = FixedClock(MONDAY + timedelta(days=2))
    with SendGridStandIn(api_key="SG.test-key") as standin:
        standin.fail(3, status=503)
        provider = SendGridProvider("SG.test-key", host=standin.url, max_in_flight=8)
        try:
            first = dispatcher(engine, make_settings(tmp_path), clock, provider).run_once()
            clock.advance(timedelta(hours=1))
            second = dispatcher(engine, make_settings(tmp_path), clock, provider).run_once()
        finally:
            provider.close()
        uids = standin.custom_arg_values("drip_uid")
    assert (first.sent, first.retried) == (len(mailed) - 3, 3) and second.sent == 3
    sent = [m for m in messages(engine) if m.status == "sent"]
    assert len(sent) == len(mailed) and sorted(uids) == sorted(m.uid for m in sent)  # once each
    assert len(messages(engine)) == len(mailed)  # no row at all for a held-out lead
    assert all(m.provider_message_id for m in sent)
    # SendGrid tracks clicks itself: no /c/ redirect of ours, the link's tag rides in its URL
    html = next(
        c["value"] for c in standin.accepted[0].payload["content"] if c["type"] == "text/html"
    )
    assert "/c/" not in html and "/o/" not in html
    assert "drip_tag=guide" in html


def test_drip_run_names_a_missing_sendgrid_key(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.clirun import drip

    monkeypatch.setenv("DRIP_PROVIDER", "sendgrid")
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    code, _, err = drip("run", "--once")
    assert code == 1 and "SENDGRID_API_KEY" in err and err.count("\n") == 1


def test_run_once_reports_progress_per_recorded_outcome(engine: Engine, tmp_path: Path) -> None:
    """The hook `drip run --once` draws its bar with: a running count up to what was due."""
    for i in range(5):
        enroll(engine, f"p{i}@acme.example", timezone="Europe/Berlin")
    enroll(engine, "night@acme.example", timezone="Pacific/Auckland")  # 23:00 there: waits
    settings = make_settings(tmp_path, batch_size=2)
    clock = FixedClock(MONDAY + timedelta(days=2))
    sender = dispatcher(engine, settings, clock)
    due = sender.count_due()
    seen: list[int] = []
    tally = sender.run_once(on_progress=seen.append)
    assert due == 6 and (tally.sent, tally.waiting) == (5, 1)
    assert seen == sorted(seen) and len(seen) >= 3 and seen[-1] == due  # batches of 2
    assert sender.count_due() == 0
    assert sender.run_once(on_progress=seen.append).claimed == 0 and seen[-1] == due


class PeekingProvider(OutboxProvider):
    """While it sends, another worker runs a whole cycle (as a second `drip run` would)."""

    def __init__(self, directory: Path, other: Dispatcher | None = None) -> None:
        super().__init__(directory)
        self.other = other
        self.other_tally: object = None

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        if self.other is not None:
            self.other_tally = self.other.run_once()
        return super().send(emails)


def test_a_second_worker_never_takes_a_live_send_for_a_crashed_one(
    engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    for i in range(5):
        enroll(engine, f"race{i}@acme.example")
    clock = FixedClock(MONDAY + timedelta(days=2))
    seen: list[str] = []

    class Recording(OutboxProvider):
        def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
            seen.extend(e.uid for e in emails)
            return super().send(emails)

    other = Dispatcher(
        engine, settings, CAMPAIGNS, SLA, Recording(settings.outbox_dir), clock, worker="B"
    )
    provider = PeekingProvider(settings.outbox_dir, other)
    tally = Dispatcher(engine, settings, CAMPAIGNS, SLA, provider, clock, worker="A").run_once()
    assert tally.sent == 5
    assert seen == []  # B found nothing to recover and nothing to claim while A was sending
    assert provider.other_tally is not None and provider.other_tally.recovered == 0  # type: ignore[attr-defined]
    assert all(m.status == "sent" for m in messages(engine))


class WaitingProvider(Provider):
    """Answers 'retry' with a wait (as a 429 or the daily cap does) a number of times."""

    name = "waiting"

    def __init__(self, waits: int) -> None:
        self.waits = waits

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        if self.waits > 0:
            self.waits -= 1
            return [
                SendResult(e.uid, "retry", error="429 rate limited", retry_after=60) for e in emails
            ]
        return [SendResult(e.uid, "sent", provider_message_id=e.uid) for e in emails]


def test_waits_the_provider_asks_for_use_up_no_attempts(engine: Engine, tmp_path: Path) -> None:
    enroll(engine, "w@acme.example")
    clock = FixedClock(MONDAY + timedelta(days=2))
    provider = WaitingProvider(waits=4)
    settings = make_settings(tmp_path, max_attempts=2)
    for _ in range(5):
        dispatcher(engine, settings, clock, provider).run_once()
        clock.advance(timedelta(seconds=61))
    [message] = messages(engine)
    assert (message.status, message.attempts) == ("sent", 1)  # four waits, then the first real try


def test_an_exit_that_lands_during_the_send_is_not_undone_by_the_advance(
    engine: Engine, tmp_path: Path
) -> None:
    """A lead unsubscribes (or leaves the campaign) while a worker holds its enrollment's lease
    and sends: the email is recorded as sent, and the enrollment stays exited."""
    from sqlalchemy import update as sql_update

    enroll(engine, "jane@acme.example", first_name="Jane", timezone="Europe/Berlin")

    class ExitDuringSend(OutboxProvider):
        def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
            with engine.begin() as connection:
                connection.execute(
                    sql_update(Enrollment.__table__).values(  # type: ignore[attr-defined]
                        status="exited", exit_reason="left the campaign"
                    )
                )
            return super().send(emails)

    settings = make_settings(tmp_path)
    clock = FixedClock(MONDAY + timedelta(days=2))
    tally = dispatcher(engine, settings, clock, ExitDuringSend(settings.outbox_dir)).run_once()
    assert tally.sent == 1
    with Session(engine) as session:
        (row,) = session.exec(select(Enrollment)).all()
    # the exit wins: the row is not advanced past it (nor, at a last step, marked completed)
    assert (row.status, row.exit_reason, row.current_step) == (
        "exited",
        "left the campaign",
        "checkin",
    )
    assert [m.status for m in messages(engine)] == ["sent"]
