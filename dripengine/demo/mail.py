"""The emails the demo sent, as a mail client sees them: read from the outbox's ``.eml`` files,
with the tracked links, the open pixel and the unsubscribe URL the demo then uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path

BUTTON = re.compile(r'<a [^>]*href="(?P<href>[^"]+/c/[^"]+)"[^>]*>(?P<text>.*?)</a>', re.S)
PIXEL = re.compile(r'<img [^>]*src="(?P<src>[^"]+/o/[^"]+)"')
TAGS = re.compile(r"<[^>]+>")


@dataclass
class Mail:
    path: Path
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""

    def buttons(self) -> list[tuple[str, str]]:
        """``(text, tracked href)`` of each tracked link, in order."""
        found = []
        for match in BUTTON.finditer(self.html):
            text = " ".join(TAGS.sub(" ", match["text"]).split())
            found.append((text, match["href"].replace("&amp;", "&")))
        return found

    def pixel(self) -> str | None:
        match = PIXEL.search(self.html)
        return match["src"].replace("&amp;", "&") if match else None

    def unsubscribe_url(self) -> str:
        return str(self.message["List-Unsubscribe"]).strip("<>")

    def base_url(self) -> str:
        """Where `drip serve` answers for this email (its links' scheme, host and port)."""
        return self.unsubscribe_url().split("/u/", 1)[0]


def read_outbox(folder: Path) -> list[Mail]:
    mails = []
    for path in sorted(folder.glob("**/*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        mails.append(Mail(path, message))
    return mails


def address(header: str) -> str:
    """The bare address of a ``To``/``From`` header, lower-cased."""
    return parseaddr(header)[1].lower()
