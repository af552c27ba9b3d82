"""One outgoing email, and its RFC 5322 form. Pure: no network, no files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from functools import lru_cache

from dripengine.mail import headers

TEST_SUBJECT_PREFIX = "[TEST] "
# RFC 5322 allows 998 characters a line. At the default 78, Python refolds a long List-Unsubscribe
# URL (there is no space to fold at) into RFC 2047 encoded words, which mail clients do not read
# as a URL: one-click unsubscribe would silently break. Every path serialises with these.
WIRE_POLICY = SMTP.clone(max_line_length=headers.MAX_LINE)
WIRE_POLICY_UTF8 = SMTPUTF8.clone(max_line_length=headers.MAX_LINE)


@dataclass(frozen=True)
class OutgoingEmail:
    uid: str  # our id: the Message-ID's left part, and the custom argument an ESP echoes in its events
    sender: str  # "Name <address>"
    to: str
    subject: str
    html: str
    text: str
    created_at: datetime
    reply_to: str | None = None
    unsubscribe_url: str | None = None  # List-Unsubscribe (RFC 8058 one-click) when given
    categories: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    test: bool = False

    @property
    def message_id(self) -> str:
        return f"<{self.uid}@{_domain(self.sender)}>"


@lru_cache(maxsize=256)
def _domain(sender: str) -> str:
    """The sender's domain, for Message-IDs (parsed once per sender: ~15 µs an email otherwise)."""
    return parseaddr(sender)[1].rpartition("@")[2] or "dripengine.invalid"


def mailbox(name: str, address: str) -> str:
    """``Name <address>``, the name quoted when it holds a character with a meaning there.

    Unquoted, ``Doe, Jane <jane@x>`` reads as two addresses (``parseaddr`` gives ``("", "Doe")``);
    quoted it comes back as the name it was. Non-ASCII stays as is (an ESP's JSON API and the RFC
    5322 writer encode it themselves).
    """
    if not name:
        return address
    if headers.SPECIALS.intersection(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def as_test(email: OutgoingEmail) -> OutgoingEmail:
    """The same email, clearly marked as a test: subject prefix and an ``X-Drip-Test`` header."""
    subject = (
        email.subject
        if email.subject.startswith(TEST_SUBJECT_PREFIX)
        else TEST_SUBJECT_PREFIX + email.subject
    )
    return OutgoingEmail(
        uid=email.uid,
        sender=email.sender,
        to=email.to,
        subject=subject,
        html=email.html,
        text=email.text,
        created_at=email.created_at,
        reply_to=email.reply_to,
        unsubscribe_url=email.unsubscribe_url,
        categories=email.categories,
        headers={**email.headers, "X-Drip-Test": "yes"},
        test=True,
    )


def to_mime(email: OutgoingEmail) -> EmailMessage:
    """multipart/alternative, plain text first, with every header a receiving server expects.

    Every header value is made by :mod:`dripengine.mail.headers` and stored verbatim, so the
    email package never parses lead data as header syntax: an encoded word in a name stays text,
    a List-Unsubscribe URL stays one readable line, a long word is encoded and folded. Raises
    ValueError when a value holds a control character, raw or inside an encoded word.
    """
    for name, value in (
        ("From", email.sender),
        ("To", email.to),
        ("Reply-To", email.reply_to or ""),
        ("Subject", email.subject),
        ("List-Unsubscribe", email.unsubscribe_url or ""),
        *email.headers.items(),
    ):
        headers.check(name, value)
    message = EmailMessage(policy=WIRE_POLICY)
    _set(message, "From", _mailbox(email.sender))
    _set(message, "To", _mailbox(email.to))
    if email.reply_to:
        _set(message, "Reply-To", _mailbox(email.reply_to))
    _set(message, "Subject", headers.unstructured(email.subject))
    _set(message, "Date", format_datetime(email.created_at))
    _set(message, "Message-ID", email.message_id)
    if email.unsubscribe_url:
        _set(message, "List-Unsubscribe", f"<{email.unsubscribe_url}>")
        _set(message, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    for name, value in email.headers.items():
        _set(message, name, headers.unstructured(value))
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def wire_bytes(email: OutgoingEmail, message: EmailMessage | None = None) -> bytes:
    """``email`` as it goes on the wire: CRLF, lines up to 998 characters (a URL is never encoded
    or split), UTF-8 in headers only for an address that needs it (SMTPUTF8, RFC 6531)."""
    message = to_mime(email) if message is None else message
    return message.as_bytes(policy=WIRE_POLICY_UTF8 if is_international(email) else WIRE_POLICY)


def is_international(email: OutgoingEmail) -> bool:
    """Whether an address of ``email`` is non-ASCII (display names are encoded, never raw)."""
    return not all(
        parseaddr(value)[1].isascii() for value in (email.sender, email.to, email.reply_to or "")
    )


def _set(message: EmailMessage, name: str, value: str) -> None:
    # set_raw keeps the value as made here: the policy writes it back verbatim (it refolds only a
    # line over max_line_length, which fold() never makes) and never decodes an encoded word in it.
    message.set_raw(name, headers.fold(name, value))


def _mailbox(value: str) -> str:
    name, address = parseaddr(value)
    return headers.mailbox_header(name, address)
