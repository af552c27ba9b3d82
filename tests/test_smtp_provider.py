"""The SMTP provider against a real SMTP server on loopback (aiosmtpd), plain, STARTTLS and TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dripengine.exceptions import ConfigError
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.smtp import SMTPProvider
from tests import headerblock

AT = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
LOOPBACK = "127.0.0.1"
EHLO = "drip.test"  # given, so smtplib never looks up our FQDN


def email(uid: str = "3f2a9c", **overrides: Any) -> OutgoingEmail:
    values: dict[str, Any] = dict(
        uid=uid,
        sender="Acme Growth Team <hello@acme.example>",
        to=f"Jane Doe <jane+{uid}@lead.example>",
        subject="Still thinking about Acme Corp? — ünïcode",
        html="<p>Hello Jane</p>",
        text="Hello Jane — ünïcode",
        created_at=AT,
        unsubscribe_url="http://127.0.0.1:8080/u/token",
    )
    values.update(overrides)
    return OutgoingEmail(**values)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes  # the DATA bytes exactly as the server received them


@dataclass
class Handler:
    """Stores what it receives; refuses senders blocked550@…, recipients refuse550@… / busy451@…,
    and messages whose subject is a key of ``refuse_data`` (after DATA, with its answer)."""

    received: list[Received] = field(default_factory=list)
    refuse_data: dict[str, str] = field(default_factory=dict)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("blocked550@"):
            return "550 5.7.1 Sender blocked"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refuse550@"):
            return "550 5.1.1 <refuse550@lead.example>: Recipient address rejected: User unknown"
        if address.startswith("busy451@"):
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
        parsed = message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        if parsed["Subject"] in self.refuse_data:
            return self.refuse_data[parsed["Subject"]]
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, envelope.content)
        )
        return "250 2.0.0 Ok: queued"


class CountingController(Controller):
    """Listens on a free port and remembers every connection it served."""

    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(handler, hostname=LOOPBACK, port=0, **kwargs)
        self.connections: list[SMTP] = []

    def factory(self) -> SMTP:
        server = super().factory()
        self.connections.append(server)
        return server

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]  # port 0 → the one the OS chose
        super()._trigger_server()
        self.connections.clear()  # the controller's own readiness probe is not ours

    def drop_connections(self) -> None:
        async def drop() -> None:
            for server in self.connections:
                if server.transport is not None:
                    server.transport.close()
            await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(timeout=2)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None:  # idempotent: a test may stop the server itself
            super().stop(no_assert)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[CountingController] = []

    def start(**kwargs: Any) -> tuple[CountingController, Handler]:
        handler = Handler()
        controller = CountingController(handler, **kwargs)
        controller.start()
        started.append(controller)
        return controller, handler

    yield start
    for controller in started:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dripengine test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Certificate(server, client)


MECHANISMS: list[str] = []


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    MECHANISMS.append(mechanism)
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"drip", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


def plain(controller: CountingController, **kwargs: Any) -> SMTPProvider:
    return SMTPProvider(
        LOOPBACK, controller.port, tls="none", timeout=2, local_hostname=EHLO, **kwargs
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def test_a_batch_goes_out_on_one_connection_as_a_complete_message(serve: Any) -> None:
    controller, handler = serve()
    provider = plain(controller)
    try:
        results = provider.send([email("a1"), email("a2"), email("a3")])
    finally:
        provider.close()

    assert [r.status for r in results] == ["sent"] * 3
    assert [r.provider_message_id for r in results] == [
        "<a1@acme.example>",
        "<a2@acme.example>",
        "<a3@acme.example>",
    ]
    assert len(controller.connections) == 1
    first = handler.received[0]
    assert first.mail_from == "hello@acme.example"
    assert first.rcpt_tos == ["jane+a1@lead.example"]
    parsed = first.message
    assert parsed["Message-ID"] == "<a1@acme.example>"
    assert parsed["From"] == "Acme Growth Team <hello@acme.example>"
    assert parsed["To"] == "Jane Doe <jane+a1@lead.example>"
    assert parsed["Subject"] == "Still thinking about Acme Corp? — ünïcode"
    assert parsed["List-Unsubscribe"] == "<http://127.0.0.1:8080/u/token>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().strip() == "Hello Jane — ünïcode"


def test_the_connection_is_reused_across_calls_and_reopened_after_a_drop(serve: Any) -> None:
    controller, handler = serve()
    provider = plain(controller)
    try:
        assert provider.send([email("b1")])[0].status == "sent"
        assert provider.send([email("b2")])[0].status == "sent"
        assert len(controller.connections) == 1

        controller.drop_connections()  # the server closed an idle connection
        [result] = provider.send([email("b3")])
    finally:
        provider.close()

    assert result.status == "sent", result.error
    assert len(controller.connections) == 2
    assert [r.message["Message-ID"] for r in handler.received] == [
        "<b1@acme.example>",
        "<b2@acme.example>",
        "<b3@acme.example>",
    ]


def test_refused_recipients_fail_or_retry_and_the_batch_goes_on(serve: Any) -> None:
    controller, handler = serve()
    provider = plain(controller)
    try:
        results = provider.send(
            [
                email("c1"),
                email("c2", to="Gone <refuse550@lead.example>"),
                email("c3", to="Later <busy451@lead.example>"),
                email("c4"),
            ]
        )
    finally:
        provider.close()

    assert [r.status for r in results] == ["sent", "failed", "retry", "sent"]
    assert results[1].error is not None and "550" in results[1].error
    assert "User unknown" in results[1].error
    assert results[2].error is not None and "451" in results[2].error
    assert [r.message["Message-ID"] for r in handler.received] == [
        "<c1@acme.example>",
        "<c4@acme.example>",
    ]
    assert len(controller.connections) == 1


def test_line_breaks_and_control_characters_never_reach_the_wire(serve: Any) -> None:
    controller, handler = serve()
    provider = plain(controller)
    try:
        results = provider.send(
            [
                email("d1", headers={"X-Campaign": "spring\r\nBcc: victim@else.example"}),
                email("d2", subject="Hi\nBcc: victim@else.example"),
                email("d3", to="Jane\r\nBcc: victim@else.example <jane@lead.example>"),
                email("d4", subject="Hi\x00there"),
                email("d5"),
            ]
        )
    finally:
        provider.close()

    assert [r.status for r in results] == ["failed"] * 4 + ["sent"]
    assert all("not a valid message" in (r.error or "") for r in results[:4])
    assert [r.message["Message-ID"] for r in handler.received] == ["<d5@acme.example>"]
    assert all("victim" not in r.message.as_string() for r in handler.received)


def test_one_click_unsubscribe_arrives_verbatim_however_long_the_url(serve: Any) -> None:
    url = "https://drip.example/u/" + "Zm9vYmFy" * 30  # a real token URL is ~250 characters
    controller, handler = serve()
    provider = plain(controller)
    try:
        [result] = provider.send([email("u1", unsubscribe_url=url)])
    finally:
        provider.close()

    assert result.status == "sent"
    [received] = handler.received
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in received.raw  # one line, not =?utf-8?q?
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in received.raw
    assert b"\r\nMessage-ID: <u1@acme.example>\r\n" in received.raw
    assert received.message["List-Unsubscribe"] == f"<{url}>"


def test_an_encoded_line_break_in_a_name_or_subject_never_reaches_the_server(serve: Any) -> None:
    hostile = "=?utf-8?q?Jane=0D=0ABcc=3A_victim=40else.example?="
    controller, handler = serve()
    provider = plain(controller)
    try:
        results = provider.send(
            [
                email("e1", to=f"{hostile} <jane@lead.example>"),
                email("e2", subject=f"Hi {hostile}"),
                email("e3", to='"=?utf-8?b?SmFuZQ0KWC1FdmlsOiAx?=" <jane@lead.example>'),
                email("e4", to="=?utf-8?q?Jos=C3=A9?= <jose@lead.example>"),  # decodes clean
            ]
        )
    finally:
        provider.close()

    assert [r.status for r in results] == ["failed", "failed", "failed", "sent"]
    assert all("inside an RFC 2047 encoded word" in (r.error or "") for r in results[:3])
    [received] = handler.received
    assert received.rcpt_tos == ["jose@lead.example"]
    assert headerblock.names(received.raw) == headerblock.TOP_LEVEL
    # what the lead typed is shown as typed: the word is text, not a header fragment
    assert headerblock.display_name(received.raw) == ("=?utf-8?q?Jos=C3=A9?=", "jose@lead.example")
    assert b"victim" not in b"".join(r.raw for r in handler.received)


def test_a_200_character_word_in_a_name_arrives_as_one_readable_mailbox(serve: Any) -> None:
    name = "Jane " + "x" * 200 + " Doe"
    controller, handler = serve()
    provider = plain(controller)
    try:
        [result] = provider.send([email("w1", to=f"{name} <jane@lead.example>")])
    finally:
        provider.close()

    assert result.status == "sent"
    [received] = handler.received
    assert all(len(line) <= 78 for line in headerblock.lines_of(received.raw, "To"))
    assert headerblock.display_name(received.raw) == (name, "jane@lead.example")
    assert [a.addr_spec for a in received.message["To"].addresses] == ["jane@lead.example"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_login(serve: Any, certificate: Certificate, mechanism: str) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    controller, handler = serve(
        tls_context=certificate.server,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
        auth_exclude_mechanism=[other],
    )
    provider = SMTPProvider(
        LOOPBACK,
        controller.port,
        username="drip",
        password="s3cret",
        timeout=2,
        local_hostname=EHLO,
        ssl_context=certificate.client,
    )
    try:
        provider.check()
        results = provider.send([email("e1"), email("e2")])
    finally:
        provider.close()
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(handler.received) == 2
    assert MECHANISMS[-1] == mechanism


def test_a_wrong_password_is_a_config_error_naming_the_setting(
    serve: Any, certificate: Certificate
) -> None:
    controller, handler = serve(
        tls_context=certificate.server,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    provider = SMTPProvider(
        LOOPBACK,
        controller.port,
        username="drip",
        password="wrong",
        timeout=2,
        local_hostname=EHLO,
        ssl_context=certificate.client,
    )
    with pytest.raises(ConfigError, match="DRIP_SMTP_USERNAME") as check:
        provider.check()
    assert "\n" not in check.value.message
    with pytest.raises(ConfigError, match="smtp.username"):
        provider.send([email("f1")])  # nothing in the batch could be sent
    assert handler.received == []


def test_an_untrusted_certificate_is_refused(serve: Any, certificate: Certificate) -> None:
    controller, _ = serve(tls_context=certificate.server, require_starttls=True)
    provider = SMTPProvider(
        LOOPBACK, controller.port, timeout=2, local_hostname=EHLO
    )  # system CAs only
    with pytest.raises(ConfigError, match="certificate"):
        provider.check()


def test_starttls_missing_names_the_tls_setting(serve: Any) -> None:
    controller, _ = serve()
    with pytest.raises(ConfigError, match="DRIP_SMTP_TLS"):
        SMTPProvider(LOOPBACK, controller.port, timeout=2, local_hostname=EHLO).check()


def test_implicit_tls(serve: Any, certificate: Certificate) -> None:
    controller, handler = serve(ssl_context=certificate.server)
    provider = SMTPProvider(
        LOOPBACK,
        controller.port,
        tls="tls",
        timeout=2,
        local_hostname=EHLO,
        ssl_context=certificate.client,
    )
    try:
        provider.check()
        [result] = provider.send([email("g1")])
    finally:
        provider.close()
    assert result.status == "sent"
    assert handler.received[0].message["Message-ID"] == "<g1@acme.example>"


def test_connection_refused_at_start_names_host_and_port() -> None:
    provider = SMTPProvider(LOOPBACK, free_port(), tls="none", timeout=2, local_hostname=EHLO)
    with pytest.raises(ConfigError, match="DRIP_SMTP_HOST") as check:
        provider.check()
    assert "DRIP_SMTP_PORT" in check.value.message
    with pytest.raises(ConfigError, match="DRIP_SMTP_HOST"):
        provider.send([email("h1")])


def test_unknown_host_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no DNS lookup leaves the machine
    with pytest.raises(ConfigError, match="smtp.nowhere.invalid:587.*DRIP_SMTP_HOST"):
        SMTPProvider("smtp.nowhere.invalid", 587, timeout=2, local_hostname=EHLO).check()


def test_a_server_gone_mid_run_is_a_retry_not_an_error(serve: Any) -> None:
    controller, _ = serve()
    provider = plain(controller)
    try:
        assert provider.send([email("i1")])[0].status == "sent"
        controller.stop()  # the server goes away after we reached it once
        results = provider.send([email("i2"), email("i3")])
    finally:
        provider.close()
    assert [r.status for r in results] == ["retry", "retry"]
    assert all(r.error for r in results)


def test_refusals_at_mail_from_and_after_data(serve: Any) -> None:
    controller, handler = serve()
    handler.refuse_data = {
        "spam": "554 5.7.1 Message rejected as spam",
        "full": "452 4.3.1 Out of storage",
    }
    provider = plain(controller)
    try:
        results = provider.send(
            [
                email("j1", sender="Blocked <blocked550@acme.example>"),
                email("j2", subject="spam"),
                email("j3", subject="full"),
                email("j4", to="Jürgen <jürgen@lead.example>"),  # SMTPUTF8, offered by aiosmtpd
                email("j5"),
            ]
        )
    finally:
        provider.close()

    assert [r.status for r in results] == ["failed", "failed", "retry", "sent", "sent"]
    assert "sender <blocked550@acme.example> refused: 550" in (results[0].error or "")
    assert "554 5.7.1 Message rejected as spam" in (results[1].error or "")
    assert "452" in (results[2].error or "")
    assert [r.rcpt_tos for r in handler.received] == [
        ["jürgen@lead.example"],
        ["jane+j5@lead.example"],
    ]
    assert handler.received[0].message["To"] == "Jürgen <jürgen@lead.example>"
    assert len(controller.connections) == 1
