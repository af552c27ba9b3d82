"""``outbox``: every email becomes an RFC 5322 ``.eml`` file in a folder. The embedded default.

Files are written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader never sees half a message, and named by our message id, so a retry overwrites instead of
duplicating.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from email.policy import SMTP
from pathlib import Path

from dripengine.sending.message import OutgoingEmail, to_mime
from dripengine.sending.providers.base import Provider, SendResult


class OutboxProvider(Provider):
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return [self._write(email) for email in emails]

    def _write(self, email: OutgoingEmail) -> SendResult:
        folder = self.directory / ("test" if email.test else email.created_at.strftime("%Y-%m-%d"))
        target = folder / f"{email.uid}.eml"
        try:
            data = to_mime(email).as_bytes(policy=SMTP)
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
