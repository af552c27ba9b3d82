"""`drip serve` as a subprocess on a free loopback port, as a user starts it; plain HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from dripengine.testing.serve_process import ServeProcess, free_port

__all__ = ["Answer", "drip_serve", "free_port", "request"]


@contextmanager
def drip_serve(
    folder: Path, port: int, *, now: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``drip [--now NOW] serve --port PORT`` in ``folder``; yields its base URL once it answers."""
    with ServeProcess(folder, env=env, now=now, port=port) as server:
        yield server.url


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json_error(self) -> str:
        """The ``error`` of a JSON answer."""
        return str(json.loads(self.body).get("error", ""))


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request, redirects not followed (the Location is what a test looks at)."""
    parts = urlsplit(base + path if path.startswith("/") else path)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


def sent_emails(folder: Path) -> list[EmailMessage]:
    """Every email in the outbox (not the test sends)."""
    paths = sorted(p for p in (folder / "outbox").rglob("*.eml") if p.parent.name != "test")
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in paths
    ]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def init_folder(folder: Path, env: Mapping[str, str]) -> None:
    """`drip init FOLDER` in this process with ``env`` and none of the caller's other DRIP_*."""
    from click.testing import CliRunner

    from dripengine.cli import main

    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DRIP_")}
    result = CliRunner().invoke(main, ["init", str(folder)], env={**cleared, **env})
    assert result.exit_code == 0, result.output
