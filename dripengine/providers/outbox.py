"""``outbox``: every email becomes an RFC 5322 ``.eml`` file in a folder. The embedded default.

Files are written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader never sees half a message, and named by our message id, so a retry overwrites instead of
duplicating.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from dripengine.mail.message import OutgoingEmail, wire_bytes
from dripengine.providers.base import Evidence, Provider, SendResult


class OutboxProvider(Provider):
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return [self._write(email) for email in emails]

    def evidence(self, uid: str, created_at: datetime) -> Evidence:
        """After a crash: was this message written? The file is the evidence (atomic write)."""
        return (
            "sent" if (self._folder(created_at, test=False) / f"{uid}.eml").exists() else "not_sent"
        )

    def _folder(self, created_at: datetime, *, test: bool) -> Path:
        return self.directory / ("test" if test else created_at.strftime("%Y-%m-%d"))

    def _write(self, email: OutgoingEmail) -> SendResult:
        folder = self._folder(email.created_at, test=email.test)
        target = folder / f"{email.uid}.eml"
        try:
            data = wire_bytes(email)
        except ValueError as exc:  # e.g. a line break in a header: never sendable
            return SendResult(email.uid, "failed", error=f"not a valid message: {exc}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            return SendResult(
                email.uid, "retry", error=f"cannot write {target}: {exc.strerror or exc}"
            )
        return SendResult(
            email.uid, "sent", provider_message_id=email.message_id, where=str(target)
        )
