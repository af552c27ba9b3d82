"""`drip serve` against slow and oversized bodies (issue 12, finding 4): a real server, raw sockets.

Bodies are refused on their headers where possible, read within a deadline (408 and the
connection closed), and large ones share a budget (503 + Retry-After past it), while normal
requests go on being answered.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dripengine.testing.sendgrid_webhook import TIMESTAMP_HEADER, Signer, sendgrid_event
from dripengine.testing.serve_process import ServeProcess
from tests.served import init_folder

pytestmark = pytest.mark.slow  # a `drip serve` subprocess and read deadlines

WEBHOOK = "/webhooks/sendgrid"
IDLE = 1.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Signer]]:
    folder: Path = tmp_path_factory.mktemp("guard") / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    init_folder(folder, env)
    signer = Signer.generate()
    env.update(
        DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key,
        DRIP_WEB_BODY_IDLE_SECONDS=str(IDLE),
        DRIP_WEB_BODY_BUFFER_BYTES="1000000",
        DRIP_WEB_MAX_BODY_BYTES="800000",
    )
    with ServeProcess(folder, env=env, clean_env=True) as server:
        yield server, signer


def open_post(
    server: ServeProcess, length: int | str, extra: str = "", path: str = WEBHOOK
) -> socket.socket:
    """A POST whose headers are sent and whose body is not (yet)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n"
        ).encode()
    )
    return sock


def fresh_headers() -> str:
    return (
        f"{TIMESTAMP_HEADER}: {int(time.time())}\r\n"
        "X-Twilio-Email-Event-Webhook-Signature: MEUCIQDforged==\r\n"
    )


def answer(sock: socket.socket) -> tuple[str, bytes]:
    """The response's head and its whole body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    length = next(
        (
            int(line.split(":")[1])
            for line in text.split("\r\n")
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return text, body


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(3)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def normal_request(server: ServeProcess, signer: Signer) -> tuple[int, float]:
    body = json.dumps([sendgrid_event("delivered", timestamp=int(time.time()))]).encode()
    started = time.perf_counter()
    response = server.post(WEBHOOK, body, signer.headers(body, int(time.time())), timeout=5.0)
    return response.status, time.perf_counter() - started


def test_a_stalled_body_gets_408_and_its_connection_closed(
    served: tuple[ServeProcess, Signer],
) -> None:
    server, signer = served
    with open_post(server, 500_000, fresh_headers()) as sock:
        sock.sendall(b"[" + b" " * 1000)  # then nothing
        started = time.monotonic()
        head, _ = answer(sock)
        assert head.startswith("HTTP/1.1 408"), head
        assert IDLE * 0.8 < time.monotonic() - started < IDLE + 3
        assert "connection: close" in head.lower() and closed_by_server(sock)
    assert normal_request(server, signer)[0] == 200


def test_headers_alone_refuse_what_they_can_before_the_body_is_read(
    served: tuple[ServeProcess, Signer],
) -> None:
    server, _ = served
    for length, extra, status in (
        (5_000_000, fresh_headers(), "413"),  # over web.max_body_bytes
        (500_000, "", "403"),  # no signature headers
        (
            500_000,
            f"{TIMESTAMP_HEADER}: {'9' * 5000}\r\nX-Twilio-Email-Event-Webhook-Signature: x\r\n",
            "403",
        ),
        ("12abc", fresh_headers(), "400"),
    ):
        with open_post(server, length, extra) as sock:  # not a byte of the body is sent
            head, body = answer(sock)
        assert head.startswith(f"HTTP/1.1 {status}"), (length, head)
        if "application/json" in head:  # uvicorn itself refuses a garbled Content-Length
            assert json.loads(body)["error"]
        assert body


def test_large_bodies_share_a_budget_and_normal_requests_go_on(
    served: tuple[ServeProcess, Signer],
) -> None:
    server, signer = served
    with open_post(server, 700_000, fresh_headers()) as holding:  # 700 kB of the 1 MB budget
        holding.sendall(b"[")
        time.sleep(0.2)  # kept: the server shows no sign outside that it took the room; let it read
        with open_post(server, 700_000, fresh_headers()) as refused:
            head, _ = answer(refused)
        assert head.startswith("HTTP/1.1 503") and "retry-after: 5" in head.lower(), head
        status, seconds = normal_request(server, signer)  # small: never waits for room
        assert status == 200 and seconds < 1.0
        assert answer(holding)[0].startswith("HTTP/1.1 408")  # and its room comes back
    with open_post(server, 700_000, fresh_headers()) as again:
        again.sendall(b"[" + b" " * (700_000 - 2) + b"]")
        head, _ = answer(again)
    assert head.startswith("HTTP/1.1 403"), head  # read in full; the forged signature fails
