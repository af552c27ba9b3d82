"""One outgoing email, and its RFC 5322 form. Pure: no network, no files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache

TEST_SUBJECT_PREFIX = "[TEST] "
# What never goes into a header, whichever provider sends it: C0 controls but tab, and DEL.
HEADER_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# RFC 5322 allows 998 characters a line. At the default 78, Python folds a long List-Unsubscribe
# URL (there is no space to fold at) into an RFC 2047 encoded word, which mail clients do not read
# as a URL: one-click unsubscribe would silently break.
WIRE_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class OutgoingEmail:
    uid: str  # our id: the Message-ID's left part, custom_args at SendGrid
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


_SPECIALS = frozenset('()<>@,:;."[]\\')


def mailbox(name: str, address: str) -> str:
    """``Name <address>``, the name quoted when it holds a character with a meaning there.

    Unquoted, ``Doe, Jane <jane@x>`` reads as two addresses (``parseaddr`` gives ``("", "Doe")``);
    quoted it comes back as the name it was. Non-ASCII stays as is (SendGrid's JSON and the RFC
    5322 writer encode it themselves).
    """
    if not name:
        return address
    if _SPECIALS.intersection(name):
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


def _check_header(name: str, value: str) -> str:
    """Refuse a control character (CR, LF, NUL, …) in a header: never an injected header."""
    bad = HEADER_CONTROL.search(value)
    if bad is not None:
        raise ValueError(f"the {name} header contains a control character ({bad.group()!r})")
    return value


def to_mime(email: OutgoingEmail) -> EmailMessage:
    """multipart/alternative, plain text first, with every header a receiving server expects.

    Raises ValueError when a header value holds a control character: ``parseaddr`` would otherwise
    quietly read ``"Jane\r\nBcc: x@y <jane@…>"`` as another address.
    """
    for name, value in (
        ("From", email.sender),
        ("To", email.to),
        ("Reply-To", email.reply_to or ""),
        ("Subject", email.subject),
        ("List-Unsubscribe", email.unsubscribe_url or ""),
        *email.headers.items(),
    ):
        _check_header(name, value)
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = _address(email.sender)
    message["To"] = _address(email.to)
    if email.reply_to:
        message["Reply-To"] = _address(email.reply_to)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    message["Message-ID"] = email.message_id
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def _address(value: str) -> Address:
    name, addr = parseaddr(value)
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)
