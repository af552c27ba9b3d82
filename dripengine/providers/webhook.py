"""What an ESP's webhooks give `drip serve`: the contract ``web/`` serves every ESP through.

As in django-anymail (``webhooks/base.py`` and one webhooks module an ESP), the flow every ESP
shares is written once, in ``web/events_webhook.py`` and ``web/inbound.py``: the body read once
and bounded, strict JSON, the event count, one ingest transaction, the answer, and a 503 the ESP
retries when the database is down. An ESP package owns only what is its own: the path it posts to,
how a post proves it comes from the ESP (:meth:`EventWebhook.validate`, anymail's
``validate_request``) and how its payload reads as our events or a reply (:meth:`EventWebhook.parse`
and :meth:`InboundWebhook.read`, anymail's ``parse_events``). The provider registry
(:mod:`dripengine.providers`) lists each ESP's webhooks.

Pure: no I/O, no web framework. ``headers`` are any case-insensitive mapping (Starlette's
``Headers``); ``now`` is unix seconds from the app's clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dripengine.vocabulary import IncomingEvent


@dataclass(frozen=True)
class Refusal:
    """Why a post is not taken: 403 when it is not the ESP's (a bad signature, a stale timestamp:
    the web side logs it), 503 when it cannot be checked yet (the ESP retries it later)."""

    status: int
    reason: str


@dataclass(frozen=True)
class Skipped:
    """An event that was not taken: its place in the array (from 0) and why."""

    index: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


@dataclass
class ParsedEvents:
    events: list[IncomingEvent] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class BadEvent(ValueError):
    """One ESP event that cannot be read; the message says which field and why."""


class BadPayload(ValueError):
    """A post that is not what the ESP posts (400); the message says what was expected."""


class EventWebhook(ABC):
    """One ESP's event webhook (delivered, bounce, open, click, complaint…)."""

    path: str  # where the ESP posts, e.g. /webhooks/<esp>
    esp_name: str  # who posts, as people call it: in the log ("… will retry")

    def warnings(self) -> list[str]:
        """What `drip serve` says once when it starts (e.g. it accepts unsigned posts)."""
        return []

    def check_headers(self, headers: Mapping[str, str], now: float) -> Refusal | None:
        """What the headers alone condemn, before the body is read (no body is read for it)."""
        return None

    @abstractmethod
    def validate(self, headers: Mapping[str, str], body: str, now: float) -> Refusal | None:
        """None when the post is the ESP's (signed and fresh, or checking is off), else why not."""

    @abstractmethod
    def items(self, payload: Any) -> list[Any]:
        """The events in the decoded JSON body, one item each; :class:`BadPayload` if none."""

    @abstractmethod
    def parse(self, items: list[Any]) -> ParsedEvents:
        """Each item as our event; an unreadable one is skipped with its index and why."""


class Reply(Protocol):
    """A reply an ESP posted, read: what the web side needs to match and store it."""

    @property
    def sender(self) -> str | None: ...  # the From address, lower-cased

    @property
    def candidates(self) -> list[str]: ...  # our Message uids it may answer, most direct first

    def event(self, now: datetime, message_uid: str | None = None) -> IncomingEvent:
        """The event to store: matched to ``message_uid`` when one was found, else by address."""
        ...


class InboundWebhook(ABC):
    """One ESP's inbound route: the replies to our mail, posted as form fields."""

    path: str  # where the ESP posts; ``path/<secret>`` too (``webhooks.inbound_secret``)
    esp_name: str  # who posts, as people call it: in the log ("… will retry")

    @abstractmethod
    def read(self, fields: Mapping[str, str]) -> Reply:
        """The reply in the post's text fields; :class:`BadPayload` if it holds none."""
