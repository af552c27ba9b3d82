"""The provider interface: hand over a batch of emails, get one result per email."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from dripengine.mail.message import OutgoingEmail
from dripengine.storage import Engine

Status = Literal["sent", "retry", "failed"]
Evidence = Literal["sent", "not_sent", "unknown"]


@dataclass(frozen=True)
class SendResult:
    uid: str
    status: Status  # sent | retry (try again later: 429, 5xx, timeout) | failed (never: 4xx)
    provider_message_id: str | None = None
    error: str | None = None
    where: str | None = None  # outbox: the file written
    retry_after: float | None = None  # retry: seconds the provider asked us to wait (429)


class Provider(ABC):
    name: str
    title: ClassVar[str] = ""  # what people call it, in messages (an ESP's brand; "" for ours)
    # the provider tracks opens and clicks itself and reports them as events (an ESP's tracking
    # settings): dripengine then adds no pixel and rewrites no link, and a link's tag rides in its
    # URL so the provider's click event still names it
    tracks_engagement: bool = False

    @abstractmethod
    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Deliver ``emails``; one result each, in order. Never raises for one bad email."""

    def check(self) -> None:  # noqa: B027 (optional hook)
        """Raise :class:`~dripengine.exceptions.ConfigError` naming the setting if unusable."""

    def evidence(self, uid: str, created_at: datetime) -> Evidence:
        """After a crash: did message ``uid`` go out? ``unknown`` unless the provider can tell.

        The dispatcher resends only on ``not_sent``; ``unknown`` is never resent blindly.
        """
        return "unknown"

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; the default has none."""

    @classmethod
    def settle_unknown(cls, engine: Engine, now: datetime, grace_hours: float) -> int:
        """Fail this provider's messages a crash left ``unknown`` that can be shown never to have
        gone out, ``grace_hours`` (``sending.unknown_grace_hours``) after they were created; how
        many. The daemon runs it every 10 minutes and ``drip run --once`` at its end, for every
        provider whatever sends now. The default concludes nothing: they stay ``unknown`` and
        ``drip status`` counts them; they are never resent blindly."""
        return 0
