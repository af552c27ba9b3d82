"""The provider interface: hand over a batch of emails, get one result per email."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dripengine.sending.message import OutgoingEmail

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
    # the provider tracks opens and clicks itself and reports them as events (SendGrid's tracking
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
