"""`drip serve` as a subprocess on a free loopback port, as a user starts it; plain HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def drip_serve(
    folder: Path, port: int, *, now: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``drip [--now NOW] serve --port PORT`` in ``folder``; yields its base URL once it answers."""
    command = [sys.executable, "-m", "dripengine"]
    command += ["--now", now] if now else []
    command += ["serve", "--port", str(port)]
    log = folder / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"drip serve exited: {log.read_text(errors='replace')}")
            try:
                if request(base, "GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"drip serve did not answer: {log.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
