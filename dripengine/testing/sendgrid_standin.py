"""A SendGrid ``POST /v3/mail/send`` stand-in: a real HTTP/1.1 server on loopback.

It checks each request the way SendGrid documents the endpoint and answers in SendGrid's shapes:

- API reference: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
- Errors (400 ``{"errors": [{"message", "field", "help"}]}``):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
- Limitations (30 MB, 1,000 recipients, custom args < 10,000 bytes, no ``;``/``,`` in names):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/limitations

Accepted requests get ``202``, an empty body and an ``X-Message-Id`` header, and are recorded
(thread-safe) so a test can assert that each message arrived exactly once. Faults can be set
while it runs: the next N answers as ``429`` (with ``X-RateLimit-*`` and ``Retry-After``), ``500``
or ``503``, slow answers, connections closed without an answer; and a latency model that sleeps
server-side per request and per new TCP connection (what a TLS handshake would cost)::

    with SendGridStandIn() as sendgrid:
        provider = SendGridProvider(sendgrid.api_key, host=sendgrid.url)
        sendgrid.rate_limit(2, retry_after=3)
        ...
        assert sendgrid.custom_arg_values("drip_uid") == [...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = (
    30 * 1024 * 1024
)  # "The total size of your email, including attachments, must be less than 30MB."
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000  # "must be less than 10000 bytes", per personalization after merging
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_SEND_AT_AHEAD = 72 * 3600
ERRORS_URL = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"
# The `headers` parameter of mail/send: "You may not overwrite the following reserved headers:
# x-sg-id, x-sg-eid, received, dkim-signature, Content-Type, Content-Transfer-Encoding, To, From,
# Subject, Reply-To, CC, BCC" (SendGrid's v3 mail/send reference, repeated in the docstring of the
# official library's sendgrid/helpers/mail/header.py). Message-ID is not on the list.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"


@dataclass(frozen=True)
class Accepted:
    """One request the stand-in accepted (answered 202)."""

    message_id: str  # what went out in X-Message-Id
    payload: dict[str, Any]
    received_at: float

    def custom_args(self) -> list[dict[str, str]]:
        """The merged custom_args of each personalization, as SendGrid echoes them in events."""
        top = self.payload.get("custom_args") or {}
        return [{**top, **(p.get("custom_args") or {})} for p in self.payload["personalizations"]]


@dataclass(frozen=True)
class _Fault:
    kind: Literal["status", "drop", "slow"]
    status: int = 0
    seconds: float = 0.0
    retry_after: float = 0.0
    retry_after_header: bool = True
    limit: int = 600


def _error(message: str, field: str | None) -> dict[str, Any]:
    anchor = (field or "").split(".")[0]
    return {"message": message, "field": field, "help": f"{ERRORS_URL}#{anchor}" if field else None}


def validate(payload: Any, now: float) -> list[dict[str, Any]]:
    """SendGrid's documented request rules for ``payload``; one error dict per broken rule."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    errors += _check_personalizations(payload, now)
    errors += _check_from_subject_content(payload)
    errors += _check_custom_args(payload)
    errors += _check_categories(payload.get("categories"))
    errors += _check_headers(payload.get("headers"), "headers")
    errors += _check_send_at(payload.get("send_at"), "send_at", now)
    if "reply_to" in payload and "reply_to_list" in payload:
        errors.append(
            _error("The reply_to and reply_to_list fields are mutually exclusive.", "reply_to")
        )
    return errors


def _check_personalizations(payload: dict[str, Any], now: float) -> Iterator[dict[str, Any]]:
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        yield _error("You must have at least one personalization.", "personalizations")
        return
    if len(personalizations) > MAX_PERSONALIZATIONS:
        yield _error(
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations per "
            f"API request. You have provided {len(personalizations)} personalizations. Please "
            "consider splitting this into multiple requests and resending your request.",
            "personalizations",
        )
    seen: set[str] = set()
    total = 0
    for i, personalization in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(personalization, dict):
            yield _error("Bad Request", where)
            continue
        if not personalization.get("to"):
            yield _error(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"{where}.to",
            )
        for kind in ("to", "cc", "bcc"):
            for j, recipient in enumerate(personalization.get(kind) or []):
                total += 1
                field = f"{where}.{kind}.{j}"
                address = recipient.get("email") if isinstance(recipient, dict) else None
                if not isinstance(address, str) or not _ADDRESS.match(address):
                    yield _error("Does not contain a valid address.", f"{field}.email")
                    continue
                if address.lower() in seen:
                    yield _error(
                        "Each unique email address in the personalizations array should only be "
                        f"included once. You have included {address} more than once.",
                        f"{field}.email",
                    )
                seen.add(address.lower())
                name = recipient.get("name")
                if isinstance(name, str) and (";" in name or "," in name) and not _quoted(name):
                    yield _error(
                        "The to.name, cc.name, and bcc.name personalizations cannot include "
                        "either the ; or , characters.",
                        f"{field}.name",
                    )
        yield from _check_headers(personalization.get("headers"), f"{where}.headers")
        yield from _check_send_at(personalization.get("send_at"), f"{where}.send_at", now)
    if total > MAX_RECIPIENTS:
        yield _error(
            f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.",
            "personalizations",
        )


def _quoted(name: str) -> bool:  # the work-around django-anymail uses: a quoted display name
    return len(name) >= 2 and name.startswith('"') and name.endswith('"')


def _check_from_subject_content(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sender = payload.get("from")
    address = sender.get("email") if isinstance(sender, dict) else None
    if not address:
        yield _error(
            "The from object must be provided for every email send. It is an object that "
            "requires the email parameter, but may also contain a name parameter.",
            "from.email",
        )
    elif not isinstance(address, str) or not _ADDRESS.match(address):
        yield _error("The from email does not contain a valid address.", "from.email")
    templated = bool(payload.get("template_id"))
    personalizations = [p for p in payload.get("personalizations") or [] if isinstance(p, dict)]
    has_subject = _text(payload.get("subject")) or (
        bool(personalizations) and all(_text(p.get("subject")) for p in personalizations)
    )
    if not has_subject and not templated:
        yield _error(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.",
            "subject",
        )
    content = payload.get("content")
    if not content:
        if not templated:
            yield _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        return
    if not isinstance(content, list):
        yield _error("Bad Request", "content")
        return
    types: list[str] = []
    for i, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        if not _text(block.get("type")):
            yield _error(
                "The content type must be a string at least one character in length.",
                f"content.{i}.type",
            )
        if not _text(block.get("value")):
            yield _error(
                "The content value must be a string at least one character in length.",
                f"content.{i}.value",
            )
        types.append(str(block.get("type", "")).lower())
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected)] != expected:
        yield _error(
            "If present, text/plain and text/html may only be provided in order, following the "
            "order text/plain, text/html, then any other content.",
            "content",
        )


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_custom_args(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    top = payload.get("custom_args") or {}
    yield from _string_values(top, "custom_args")
    for i, personalization in enumerate(payload.get("personalizations") or []):
        if not isinstance(personalization, dict):
            continue
        own = personalization.get("custom_args") or {}
        yield from _string_values(own, f"personalizations.{i}.custom_args")
        if isinstance(top, dict) and isinstance(own, dict):
            merged = {**top, **own}
            size = len(json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode())
            if size >= MAX_CUSTOM_ARGS_BYTES:
                yield _error(
                    f"The custom_args parameter is limited to less than {MAX_CUSTOM_ARGS_BYTES} "
                    f"bytes per personalization (merged: {size} bytes).",
                    f"personalizations.{i}.custom_args",
                )


def _string_values(mapping: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(mapping, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for key, value in mapping.items():
        if not isinstance(value, str):
            yield _error(
                f"Invalid type. Expected: string, given: {type(value).__name__}.", f"{where}.{key}"
            )


def _check_categories(categories: Any) -> Iterator[dict[str, Any]]:
    if categories is None:
        return
    if not isinstance(categories, list):
        yield _error("Invalid type. Expected: array.", "categories")
        return
    if len(categories) > MAX_CATEGORIES:
        yield _error(
            f"You cannot have more than {MAX_CATEGORIES} categories associated with an email.",
            "categories",
        )
    for i, category in enumerate(categories):
        if not isinstance(category, str):
            yield _error("Invalid type. Expected: string.", f"categories.{i}")
        elif len(category) > MAX_CATEGORY_CHARS:
            yield _error(
                f"A category cannot be more than {MAX_CATEGORY_CHARS} characters.",
                f"categories.{i}",
            )


def _check_headers(headers: Any, where: str) -> Iterator[dict[str, Any]]:
    if headers is None:
        return
    if not isinstance(headers, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            yield _error(f"{name} is a reserved header and cannot be set.", f"{where}.{name}")
        elif not isinstance(value, str):
            yield _error("Invalid type. Expected: string.", f"{where}.{name}")


def _check_send_at(send_at: Any, where: str, now: float) -> Iterator[dict[str, Any]]:
    if send_at is None:
        return
    if not isinstance(send_at, int) or isinstance(send_at, bool):
        yield _error("Invalid type. Expected: integer (a Unix timestamp).", where)
    elif send_at > now + MAX_SEND_AT_AHEAD:
        yield _error("send_at cannot be scheduled more than 72 hours in advance.", where)


class SendGridStandIn:
    """The stand-in server. Start and stop it with ``with``; ``url`` is its base URL."""

    def __init__(
        self,
        api_key: str = "SG.standin-key.0123456789",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        idle_timeout: float = 60.0,
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        self.latency_per_request = 0.0
        self.latency_per_connection = 0.0
        self._address = (host, port)
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._accepted: list[Accepted] = []
        self._connections = 0
        self._requests = 0
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SendGridStandIn:
        server = _Server(self._address, _Handler)
        server.standin = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sendgrid-standin"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections, and wait for every handler thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes latency sleeps
        server.shutdown()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads (block_on_close)
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running (use it in a `with` block)")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what it saw -------------------------------------------------------------------------

    @property
    def accepted(self) -> list[Accepted]:
        with self._lock:
            return list(self._accepted)

    def custom_arg_values(self, name: str) -> list[str]:
        """``name``'s value in every accepted personalization, in arrival order."""
        return [args[name] for a in self.accepted for args in a.custom_args() if name in args]

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def requests(self) -> int:
        """Requests received so far (any answer)."""
        with self._lock:
            return self._requests

    def reset(self) -> None:
        """Forget what was seen and clear faults and latency."""
        with self._lock:
            self._accepted.clear()
            self._faults.clear()
            self._connections = self._requests = 0
        self.latency_per_request = self.latency_per_connection = 0.0

    # -- faults ------------------------------------------------------------------------------

    def rate_limit(
        self, count: int = 1, *, retry_after: float = 1.0, limit: int = 600, header: bool = True
    ) -> None:
        """The next ``count`` requests get 429 with ``X-RateLimit-*`` (and ``Retry-After``)."""
        self._add(
            count,
            _Fault("status", 429, retry_after=retry_after, retry_after_header=header, limit=limit),
        )

    def fail(self, count: int = 1, *, status: int = 500) -> None:
        """The next ``count`` requests get ``status`` (500, 503, …) with SendGrid's error shape."""
        self._add(count, _Fault("status", status))

    def drop(self, count: int = 1) -> None:
        """The next ``count`` requests are read, then the connection is closed without an answer."""
        self._add(count, _Fault("drop"))

    def slow(self, count: int = 1, *, seconds: float) -> None:
        """The next ``count`` requests wait ``seconds`` before being answered normally."""
        self._add(count, _Fault("slow", seconds=seconds))

    def set_latency(self, *, per_request: float = 0.0, per_connection: float = 0.0) -> None:
        """Extra server-side seconds for every request, and for every new TCP connection."""
        self.latency_per_request = per_request
        self.latency_per_connection = per_connection

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    # -- used by the handler -----------------------------------------------------------------

    def _connected(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._open.add(sock)
        self._sleep(self.latency_per_connection)

    def _disconnected(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            self._requests += 1
            return self._faults.popleft() if self._faults else None

    def _record(self, payload: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)
        with self._lock:
            self._accepted.append(Accepted(message_id, payload, self.clock()))
        return message_id

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() can join them: no thread outlives the stand-in
    block_on_close = True
    request_queue_size = 256  # many clients connect at once; the default backlog (5) drops SYNs
    standin: SendGridStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (timeout, reset) is routine here, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.standin._idle_timeout)
        self.server.standin._connected(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._disconnected(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._drain()
        self._answer(405, {"errors": [_error("Method Not Allowed", None)]})

    do_PUT = do_DELETE = do_PATCH = do_GET

    def do_POST(self) -> None:
        standin = self.server.standin
        standin._sleep(standin.latency_per_request)
        if self.path.split("?")[0] != SEND_PATH:
            self._drain()
            self._answer(404, {"errors": [_error("Not Found", None)]})
            return
        if self.headers.get("Authorization", "") != f"Bearer {standin.api_key}":
            self._drain()
            self._answer(401, {"errors": [_error(UNAUTHORIZED, None)]})
            return
        fault = standin._next_fault()
        if fault is not None and self._faulted(fault):
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._drain()
            self.close_connection = True
            self._answer(413, {"errors": [_error("Payload Too Large", None)]})
            return
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            self._answer(400, {"errors": [_error("Bad Request", None)]})
            return
        errors = validate(payload, standin.clock())
        if errors:
            self._answer(400, {"errors": errors})
            return
        message_id = standin._record(payload)
        self._answer(202, None, {"X-Message-Id": message_id})

    def _faulted(self, fault: _Fault) -> bool:
        """Apply ``fault``; True when the request has been answered (or dropped) by it."""
        standin = self.server.standin
        if fault.kind == "slow":
            standin._sleep(fault.seconds)
            return False
        self._drain()
        if fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        headers: dict[str, str] = {}
        if fault.status == 429:
            headers = {
                "X-RateLimit-Limit": str(fault.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(standin.clock() + fault.retry_after)),
            }
            if fault.retry_after_header:
                headers["Retry-After"] = str(math.ceil(fault.retry_after))
            message = "too many requests"
        else:
            message = "Internal Server Error" if fault.status == 500 else "Service Unavailable"
        self._answer(fault.status, {"errors": [_error(message, None)]}, headers)
        return True

    def _drain(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _answer(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def standin_process(
    *, per_request: float = 0.0, per_connection: float = 0.0, api_key: str | None = None
) -> Iterator[tuple[str, str]]:
    """Run a stand-in in its own Python process; yields ``(url, api_key)``.

    For benchmarks: the server's threads then do not compete with the client's for one GIL.
    """
    key = api_key or SendGridStandIn().api_key
    command = [sys.executable, "-c", f"from {__name__} import main; main()", "--api-key", key]
    command += ["--per-request", str(per_request), "--per-connection", str(per_connection)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            url = proc.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the stand-in process did not start (said {url!r})")
            yield url, key
        finally:
            proc.stdin.close()  # the signal to stop
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    """Serve a stand-in: print its URL, serve until stdin ends, then print what it accepted."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--api-key", default=SendGridStandIn().api_key)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--per-request", type=float, default=0.0, help="latency, seconds")
    parser.add_argument("--per-connection", type=float, default=0.0, help="latency, seconds")
    args = parser.parse_args(argv)
    with SendGridStandIn(args.api_key, port=args.port) as standin:
        standin.set_latency(per_request=args.per_request, per_connection=args.per_connection)
        print(standin.url, flush=True)
        sys.stdin.read()
        print(f"accepted {len(standin.accepted)} connections {standin.connections}", flush=True)


if __name__ == "__main__":
    main()
