"""A CRM webhook receiver on loopback: checks the handoff signature the way docs/handoff.md says.

A real HTTP/1.1 server in a thread. Each POST is verified (``X-Drip-Signature`` over
``X-Drip-Timestamp`` + "." + raw body, a 5-minute window) and recorded; a bad signature gets
401. ``answers`` scripts the next status codes (``[500, 500]``: two failures, then 200), and
``accepted`` lists the bodies answered 2xx, so a test can count what the CRM really took::

    with CRMReceiver(secret) as crm:
        crm.answers.extend([500, 500])
        ...
        assert [b["handoff_id"] for b in crm.accepted] == [uid]
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dripengine.handoff.body import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Received:
    status: int
    body: bytes
    headers: dict[str, str]


class CRMReceiver:
    def __init__(self, secret: str, *, path: str = "/drip/handoff", delay: float = 0.0) -> None:
        self.secret = secret
        self.path = path
        self.delay = delay  # seconds each answer takes (to widen race windows in tests)
        self.answers: deque[int] = deque()
        self.requests: list[Received] = []
        self.accepted: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the receiver first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> CRMReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver._answer(self.path, body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _answer(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            if path != self.path:
                status = 404
            elif not verify(
                self.secret,
                headers.get(TIMESTAMP_HEADER, ""),
                body,
                headers.get(SIGNATURE_HEADER, ""),
                now=int(time.time()),
                max_age=10**10,  # tests run at a fixed, fictional time: the window is the CRM's
            ):
                status = 401
            else:
                status = self.answers.popleft() if self.answers else 200
            self.requests.append(Received(status, body, headers))
            if 200 <= status < 300:
                self.accepted.append(json.loads(body))
            return status

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> CRMReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
