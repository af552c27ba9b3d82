"""The provider interface: hand over a batch of emails, get one result per email."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dripengine.sending.message import OutgoingEmail

Status = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    uid: str
    status: Status  # sent | retry (try again later: 429, 5xx, timeout) | failed (never: 4xx)
    provider_message_id: str | None = None
    error: str | None = None
    where: str | None = None  # outbox: the file written


class Provider(ABC):
    name: str

    @abstractmethod
    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Deliver ``emails``; one result each, in order. Never raises for one bad email."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; the default has none."""
