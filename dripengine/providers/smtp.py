"""``smtp``: deliver through any SMTP server with smtplib, one connection reused across batches.

The transaction is spelled out (MAIL, RCPT, DATA: the calls ``sendmail`` makes) so that we always
know how far it got. That decides two things: a connection found dead at MAIL FROM is reopened and
the email tried once more at once (nothing was handed over), and a connection lost after DATA is
reported as possibly delivered. A server's 250 after DATA is our evidence that it took the message.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Literal

from dripengine.exceptions import ConfigError
from dripengine.mail.message import OutgoingEmail, is_international, to_mime, wire_bytes
from dripengine.providers.base import Provider, SendResult

TLS = Literal["starttls", "tls", "none"]

HOST_SETTING = "smtp.host / DRIP_SMTP_HOST and smtp.port / DRIP_SMTP_PORT"
USERNAME_SETTING = "smtp.username / DRIP_SMTP_USERNAME"
AUTH_SETTINGS = f"{USERNAME_SETTING} and smtp.password / DRIP_SMTP_PASSWORD"
TLS_SETTING = "smtp.tls / DRIP_SMTP_TLS"


class _Unavailable(Exception):
    """No usable connection. ``config``: the settings are wrong, retrying will not help."""

    def __init__(self, reason: str, *, config: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.config = config


class _DroppedBeforeMail(Exception):
    """The server closed the connection before it accepted anything for this email."""


class SMTPProvider(Provider):
    """One SMTP connection, opened on first use and kept until :meth:`close` (not thread-safe:
    one provider per worker thread)."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TLS = "starttls",
        timeout: float = 30.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("starttls", "tls", "none"):
            raise ConfigError(f'{TLS_SETTING} is "{tls}"; use starttls, tls or none')
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.tls = tls
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._connection: smtplib.SMTP | None = None
        self._ehlo_name = local_hostname  # None: smtplib looks up our FQDN (once, then kept)
        # a server never reached is a configuration error; one reached before is just down
        self._reached_once = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- the Provider interface ------------------------------------------------------------

    def check(self) -> None:
        """Connect, log in, NOOP, disconnect; any problem is a :class:`ConfigError` in one line."""
        try:
            connection = self._open()
        except _Unavailable as exc:
            raise ConfigError(exc.reason) from None
        try:
            code, reply = connection.noop()
            if code != 250:
                raise ConfigError(
                    f"the SMTP server at {self.address} answered NOOP with {_reply(code, reply)}"
                )
        except (smtplib.SMTPException, OSError) as exc:
            raise ConfigError(
                f"the SMTP server at {self.address} dropped the connection: {_reason(exc)}"
            ) from None
        finally:
            _quit(connection)

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """One result per email, in order.

        Raises :class:`ConfigError` only before the first email was handed to the server (bad
        credentials, no STARTTLS, an unreachable server never reached before): then no email in
        the batch was sent. Later in a batch the same problems make the rest ``retry``.
        """
        results: list[SendResult] = []
        down: str | None = None  # a reconnect failed in this batch: don't try once per email
        for email in emails:
            if down is not None:
                results.append(SendResult(email.uid, "retry", error=down))
                continue
            try:
                results.append(self._deliver(email))
            except _Unavailable as exc:
                if exc.config and not results:
                    raise ConfigError(exc.reason) from None
                down = exc.reason
                results.append(SendResult(email.uid, "retry", error=down))
        return results

    def close(self) -> None:
        if self._connection is not None:
            _quit(self._connection)
            self._connection = None

    # -- one email ---------------------------------------------------------------------------

    def _deliver(self, email: OutgoingEmail) -> SendResult:
        try:
            sender = _envelope_address(email.sender, "sender")
            recipient = _envelope_address(email.to, "recipient")
            message = to_mime(email)
        except ValueError as exc:  # e.g. a line break in a header: never sendable
            return SendResult(email.uid, "failed", error=f"not a valid message: {exc}")
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connect()
            try:
                return self._transaction(connection, email, sender, recipient, message)
            except _DroppedBeforeMail as exc:
                self._discard()
                if not reused or attempt == 2:
                    return SendResult(email.uid, "retry", error=str(exc))
                # an idle connection the server had closed: reopen and try this email once more
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self,
        connection: smtplib.SMTP,
        email: OutgoingEmail,
        sender: str,
        recipient: str,
        message: EmailMessage,
    ) -> SendResult:
        uid = email.uid
        international = is_international(email)  # an address in a header or the envelope
        if international and not connection.has_extn("smtputf8"):
            return SendResult(
                uid,
                "failed",
                error=f"a non-ASCII address needs SMTPUTF8, which the server at {self.address} does not offer",
            )
        try:
            data = wire_bytes(email, message)
            _refuse_control_characters(data)
        except ValueError as exc:
            return SendResult(uid, "failed", error=f"not a valid message: {exc}")
        options: list[str] = []
        if international:
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        elif not data.isascii() and connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")

        stage = "MAIL FROM"
        try:
            try:
                code, reply = connection.mail(sender, options)
            except smtplib.SMTPServerDisconnected as exc:
                raise _DroppedBeforeMail(
                    f"connection lost before MAIL FROM: {_reason(exc)}"
                ) from None
            if code == 421:
                raise _DroppedBeforeMail(f"server closing the connection: {_reply(code, reply)}")
            if code != 250:
                return self._refused(connection, uid, code, reply, f"sender <{sender}> refused")
            stage = "RCPT TO"
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                return self._refused(
                    connection, uid, code, reply, f"recipient <{recipient}> refused"
                )
            stage = "DATA"
            try:
                code, reply = connection.data(data)
            except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): nothing sent
                return self._refused(
                    connection, uid, exc.smtp_code, exc.smtp_error, "message refused"
                )
            if code != 250:
                return self._refused(connection, uid, code, reply, "message refused")
        except (smtplib.SMTPException, OSError) as exc:
            self._discard()
            if stage == "DATA":
                error = f"connection lost during DATA, the server may have taken the message: {_reason(exc)}"
            else:
                error = f"connection lost at {stage}: {_reason(exc)}"
            return SendResult(uid, "retry", error=error)
        return SendResult(uid, "sent", provider_message_id=email.message_id)

    def _refused(
        self, connection: smtplib.SMTP, uid: str, code: int, reply: bytes | str, what: str
    ) -> SendResult:
        """A refusal: 4xx is ``retry``, anything else (5xx, garbage) ``failed``."""
        error = f"{what}: {_reply(code, reply)}"
        if code == 421 or not 400 <= code < 600:  # closing, or out of step with us: start afresh
            self._discard()
        else:
            try:
                connection.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()
        return SendResult(uid, "retry" if 400 <= code < 500 else "failed", error=error)

    # -- the connection ----------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _discard(self) -> None:
        if self._connection is not None:
            _abort(self._connection)
            self._connection = None

    def _open(self) -> smtplib.SMTP:
        """A connected, greeted, encrypted and logged-in connection, or :class:`_Unavailable`."""
        where = f"the SMTP server at {self.address}"
        context = self._ssl_context or ssl.create_default_context()
        try:
            connection = self._greeted(context)
        except (socket.gaierror, ConnectionRefusedError) as exc:
            raise _Unavailable(
                f"cannot reach {where}: {_reason(exc)} (check {HOST_SETTING})",
                config=not self._reached_once,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise _Unavailable(_untrusted(where, exc), config=True) from None
        except ssl.SSLError as exc:
            raise _Unavailable(
                f"TLS with {where} failed: {exc.reason or exc} (check {TLS_SETTING}: "
                "tls for implicit TLS, usually port 465; starttls for port 587)"
            ) from None
        except TimeoutError:
            hint = (
                ""
                if self.tls == "tls"
                else f" (for an implicit-TLS port such as 465, set {TLS_SETTING} to tls)"
            )
            raise _Unavailable(f"no greeting from {where}: timed out{hint}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _Unavailable(f"cannot talk to {where}: {_reason(exc)}") from None
        self._reached_once = True
        # smtplib looked our FQDN up for EHLO: keep it, once per provider rather than per connection
        self._ehlo_name = connection.local_hostname
        try:
            connection.ehlo_or_helo_if_needed()
            if self.tls == "starttls":
                if not connection.has_extn("starttls"):
                    raise _Unavailable(
                        f"{where} does not offer STARTTLS (check {TLS_SETTING}: tls for "
                        "implicit TLS, usually port 465)",
                        config=True,
                    )
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                self._login(connection, where)
        except _Unavailable:
            _abort(connection)
            raise
        except ssl.SSLCertVerificationError as exc:
            _abort(connection)
            raise _Unavailable(_untrusted(where, exc), config=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            _abort(connection)
            raise _Unavailable(f"cannot talk to {where}: {_reason(exc)}") from None
        except BaseException:
            _abort(connection)
            raise
        return connection

    def _greeted(self, context: ssl.SSLContext) -> smtplib.SMTP:
        """Connected and past the 220 greeting (smtplib checks it and closes on anything else)."""
        if self.tls == "tls":
            return smtplib.SMTP_SSL(
                self.host, self.port, self._ehlo_name, timeout=self.timeout, context=context
            )
        return smtplib.SMTP(self.host, self.port, self._ehlo_name, timeout=self.timeout)

    def _login(self, connection: smtplib.SMTP, where: str) -> None:
        try:
            connection.login(self.username or "", self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _Unavailable(
                f"{where} refused the login for {self.username!r}: "
                f"{_reply(exc.smtp_code, exc.smtp_error)} (check {AUTH_SETTINGS})",
                config=True,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise _Unavailable(
                f"{where} offers no AUTH on this connection (unset {USERNAME_SETTING}, or check "
                f"{TLS_SETTING}: many servers offer AUTH only after STARTTLS)",
                config=True,
            ) from None
        except smtplib.SMTPResponseException:
            raise  # any other answer: _open reports it as a connection problem
        except smtplib.SMTPException as exc:  # "No suitable authentication method found."
            raise _Unavailable(f"{where}: {exc} (check {USERNAME_SETTING})", config=True) from None


def _untrusted(where: str, exc: ssl.SSLCertVerificationError) -> str:
    return (
        f"{where} presented a TLS certificate we do not trust: {exc.verify_message} "
        f"(check {HOST_SETTING}: the name must match the certificate)"
    )


def _envelope_address(value: str, role: str) -> str:
    """The bare address for MAIL FROM / RCPT TO; line breaks or controls anywhere are refused."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"the {role} {value!r} contains a line break or control character")
    address = parseaddr(value)[1]
    if "@" not in address or any(ch.isspace() for ch in address):
        raise ValueError(f"the {role} {value!r} has no usable address")
    return address


def _refuse_control_characters(data: bytes) -> None:
    """No NUL, escape or other control byte in the header block (tab and CRLF folding are fine)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    bad = sorted({byte for byte in head if (byte < 32 and byte not in b"\t\r\n") or byte == 127})
    if bad:
        raise ValueError(
            "a header contains control characters (" + ", ".join(f"0x{b:02x}" for b in bad) + ")"
        )


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}".strip()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        _abort(connection)


def _abort(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):  # closing a broken socket
        connection.close()
