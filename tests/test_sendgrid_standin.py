"""The SendGrid stand-in's server: the contract's answers over real HTTP, what it records, its
faults, its latency model and its life cycle (plain http.client and raw sockets). The rules
themselves are tested on the pure contract, in test_sendgrid_contract.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dripengine.testing import SendGridStandIn, sendgrid_contract
from dripengine.testing.sendgrid_contract import MAX_BODY_BYTES
from tests.test_sendgrid_contract import payload
from tests.waiting import wait_for

NOW = 1_800_000_000.0


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(clock=lambda: NOW) as standin:
        yield standin


class Client:
    """One kept-alive connection, like a pooled client's."""

    def __init__(self, standin: SendGridStandIn, key: str | None = None) -> None:
        host, port = standin.url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)
        self.key = standin.api_key if key is None else key

    def post(
        self, body: Any, *, raw: bytes | None = None, path: str = "/v3/mail/send"
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        self.connection.request("POST", path, body=data, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        return response.status, response.headers, json.loads(content) if content else None

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def client(sendgrid: SendGridStandIn) -> Iterator[Client]:
    c = Client(sendgrid)
    yield c
    c.close()


def errors_of(client: Client, body: Any) -> list[dict[str, Any]]:
    status, _, answer = client.post(body)
    assert status == 400, answer
    assert all(set(e) == {"message", "field", "help"} for e in answer["errors"])
    return list(answer["errors"])


def test_a_valid_request_is_accepted_recorded_and_answered_202(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    status, headers, body = client.post(payload())
    assert status == 202 and body is None
    assert headers["Content-Length"] == "0"
    assert len(headers["X-Message-Id"]) >= 16
    [accepted] = sendgrid.accepted
    assert accepted.message_id == headers["X-Message-Id"]
    assert sendgrid.custom_arg_values("drip_uid") == ["m-1"]


@pytest.mark.parametrize("key", ["", "SG.wrong"])
def test_a_missing_or_wrong_key_gets_401_in_sendgrids_shape(
    sendgrid: SendGridStandIn, key: str
) -> None:
    client = Client(sendgrid, key=key)
    try:
        status, _, body = client.post(payload())
    finally:
        client.close()
    assert status == 401
    assert body["errors"][0]["message"].startswith("The provided authorization grant is invalid")
    assert sendgrid.accepted == []


def test_not_json_is_a_400(client: Client) -> None:
    status, _, body = client.post(None, raw=b"{not json")
    assert status == 400 and body["errors"][0]["message"] == "Bad Request"


def test_an_unknown_path_is_404(client: Client) -> None:
    assert client.post(payload(), path="/v3/mail/sendx")[0] == 404


def test_a_broken_rule_is_a_400_naming_the_field_and_nothing_is_recorded(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    errors = errors_of(client, payload(send_at=int(NOW) + 72 * 3600 + 1))
    assert [e["field"] for e in errors] == ["send_at"] and "72 hours" in errors[0]["message"]
    assert sendgrid.accepted == [] and sendgrid.requests == 1
    assert client.post(payload())[0] == 202  # the same connection


def test_a_body_over_30_mb_is_413(sendgrid: SendGridStandIn, client: Client) -> None:
    raw = b" " * (MAX_BODY_BYTES + 1)
    status, headers, body = client.post(None, raw=raw)
    assert status == 413 and "errors" in body
    assert headers.get("Connection") == "close"


def test_keep_alive_serves_many_requests_on_one_connection(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    for i in range(20):
        assert client.post(payload(custom_args={"drip_uid": f"m-{i}"}))[0] == 202
    assert sendgrid.connections == 1 and sendgrid.requests == 20
    assert sendgrid.custom_arg_values("drip_uid") == [f"m-{i}" for i in range(20)]


def test_rate_limit_answers_429_with_headers_then_recovers(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    sendgrid.rate_limit(2, retry_after=3, limit=100)
    for _ in range(2):
        status, headers, body = client.post(payload())
        assert status == 429
        assert headers["X-RateLimit-Limit"] == "100"
        assert headers["X-RateLimit-Remaining"] == "0"
        assert headers["X-RateLimit-Reset"] == str(int(NOW) + 3)
        assert headers["Retry-After"] == "3"
        assert body["errors"][0]["message"]
    assert client.post(payload())[0] == 202
    assert len(sendgrid.accepted) == 1


def test_rate_limit_can_leave_out_retry_after(sendgrid: SendGridStandIn, client: Client) -> None:
    sendgrid.rate_limit(retry_after=5, header=False)
    status, headers, _ = client.post(payload())
    assert status == 429 and "Retry-After" not in headers
    assert headers["X-RateLimit-Reset"] == str(int(NOW) + 5)


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors(sendgrid: SendGridStandIn, client: Client, code: int) -> None:
    sendgrid.fail(status=code)
    assert client.post(payload())[0] == code
    assert client.post(payload())[0] == 202


def test_a_dropped_connection_gets_no_answer_and_nothing_is_recorded(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    sendgrid.drop()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        client.post(payload())
    client.close()
    assert client.post(payload())[0] == 202  # http.client reconnects
    assert len(sendgrid.accepted) == 1 and sendgrid.connections == 2


def test_slow_answers_and_the_latency_model_sleep_server_side(
    sendgrid: SendGridStandIn, client: Client
) -> None:
    sendgrid.slow(seconds=0.2)
    started = time.perf_counter()
    assert client.post(payload())[0] == 202
    assert time.perf_counter() - started >= 0.2
    sendgrid.set_latency(per_request=0.05, per_connection=0.15)
    started = time.perf_counter()
    assert client.post(payload())[0] == 202  # same connection: request latency only
    kept = time.perf_counter() - started
    other = Client(sendgrid)
    try:
        started = time.perf_counter()
        assert other.post(payload())[0] == 202  # new connection: + the "handshake"
        fresh = time.perf_counter() - started
    finally:
        other.close()
    assert 0.05 <= kept < 0.15 and fresh >= 0.2


def test_stop_ends_idle_kept_alive_connections() -> None:
    standin = SendGridStandIn()
    with standin:
        idle = Client(standin)
        assert idle.post(payload())[0] == 202
        url = standin.url
    idle.close()  # the server side is gone already; stop() did not wait 60 s for it
    with pytest.raises(RuntimeError):
        _ = standin.url
    assert url.startswith("http://127.0.0.1:")


# -- the server itself: raw sockets, where http.client would hide what the stand-in does -----


def connect(standin: SendGridStandIn, timeout: float = 10) -> socket.socket:
    host, port = standin.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def raw_request(
    standin: SendGridStandIn,
    body: bytes,
    *,
    method: str = "POST",
    headers: tuple[str, ...] = (),
    length: int | None = None,
) -> bytes:
    lines = [
        f"{method} /v3/mail/send HTTP/1.1",
        "Host: standin",
        f"Authorization: Bearer {standin.api_key}",
        "Content-Type: application/json",
        *headers,
    ]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    """One response from a ``sock.makefile("rb")`` (shared across pipelined responses)."""
    status_line = stream.readline()
    if not status_line:
        raise ConnectionError("closed without an answer")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stream.read(int(headers.get("content-length", 0)))


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_pipelined_requests_are_answered_in_order_on_one_connection(
    sendgrid: SendGridStandIn,
) -> None:
    bodies = [json.dumps(payload(custom_args={"drip_uid": f"m-{i}"})).encode() for i in range(5)]
    bodies[2] = b"{not json"
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"".join(raw_request(sendgrid, body) for body in bodies))
        answers = [read_response(stream) for _ in bodies]
    assert [status for status, _, _ in answers] == [202, 202, 400, 202, 202]
    ids = [headers["x-message-id"] for status, headers, _ in answers if status == 202]
    assert ids == [a.message_id for a in sendgrid.accepted]
    assert sendgrid.custom_arg_values("drip_uid") == ["m-0", "m-1", "m-3", "m-4"]
    assert sendgrid.connections == 1


def test_pipelined_requests_each_pay_the_request_latency(sendgrid: SendGridStandIn) -> None:
    sendgrid.set_latency(per_request=0.05)
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        started = time.perf_counter()
        sock.sendall(raw_request(sendgrid, json.dumps(payload()).encode()) * 3)
        assert [read_response(stream)[0] for _ in range(3)] == [202] * 3
        assert time.perf_counter() - started >= 0.15  # one after the other, as SendGrid would


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_client_gone_mid_body_is_forgotten_quietly(
    sendgrid: SendGridStandIn, capfd: pytest.CaptureFixture[str], how: str
) -> None:
    sock = connect(sendgrid)
    sock.sendall(raw_request(sendgrid, b'{"personalizations": [', length=10_000))
    wait_for(lambda: sendgrid.requests == 1, timeout=5, what="the stand-in to be reading the body")
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(0.1)  # the point: time for a traceback or log line, if the close made one, to show
    client = Client(sendgrid)
    try:
        assert client.post(payload())[0] == 202
    finally:
        client.close()
    assert len(sendgrid.accepted) == 1
    assert capfd.readouterr() == ("", "")  # no traceback, no log line


def test_stop_cuts_connections_in_every_state_and_no_thread_outlives_it() -> None:
    standin = SendGridStandIn().start()
    port = int(standin.url.rsplit(":", 1)[1])
    try:
        idle = connect(standin)  # kept alive after an answer
        with idle.makefile("rb") as stream:
            idle.sendall(raw_request(standin, json.dumps(payload()).encode()))
            assert read_response(stream)[0] == 202
        mid_body = connect(standin)
        mid_body.sendall(raw_request(standin, b"{", length=1000))
        wait_for(lambda: standin.requests == 2, timeout=5, what="the stand-in to count 2 requests")
        standin.slow(seconds=30)
        sleeping = connect(standin)
        sleeping.sendall(raw_request(standin, json.dumps(payload()).encode()))
        wait_for(lambda: standin.requests == 3, timeout=5, what="the stand-in to count 3 requests")
        silent = connect(standin)  # connected, nothing sent
        wait_for(
            lambda: standin.connections == 4, timeout=5, what="the stand-in to count 4 connections"
        )
    finally:
        started = time.perf_counter()
        standin.stop()
        stopped = time.perf_counter() - started
    assert stopped < 2  # not the 30 s sleep, nor the 60 s idle timeout
    assert not [t for t in threading.enumerate() if t.name == "sendgrid-standin"]
    for sock in (idle, mid_body, sleeping, silent):
        assert closed_by_server(sock)
        sock.close()
    assert len(standin.accepted) == 1
    standin.stop()  # twice is fine
    with pytest.raises(ConnectionRefusedError):  # the listening socket is closed too
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_200_connections_pay_their_latency_concurrently(sendgrid: SendGridStandIn) -> None:
    sendgrid.set_latency(per_request=0.05, per_connection=0.1)
    host, port = sendgrid.url.removeprefix("http://").split(":")
    data = raw_request(sendgrid, json.dumps(payload()).encode())

    async def one() -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(data)
        status = int((await reader.readline()).split()[1])
        writer.close()
        await writer.wait_closed()
        return status

    async def all_at_once() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(200)))

    started = time.perf_counter()
    statuses = asyncio.run(all_at_once())
    elapsed = time.perf_counter() - started
    assert statuses == [202] * 200
    assert elapsed < 2.0  # 200 x (50 + 100) ms one after the other would be 30 s
    assert sendgrid.connections == 200 and len(sendgrid.accepted) == 200


def test_kept_alive_connections_are_closed_after_idle_timeout() -> None:
    with SendGridStandIn(idle_timeout=1) as standin:
        kept = connect(standin)
        with kept, kept.makefile("rb") as stream:
            kept.sendall(raw_request(standin, json.dumps(payload()).encode()))
            assert read_response(stream)[0] == 202
            started = time.perf_counter()
            assert closed_by_server(kept)
            assert 0.9 <= time.perf_counter() - started < 3
        assert len(standin.accepted) == 1


def test_connection_close_is_honoured(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        body = json.dumps(payload()).encode()
        sock.sendall(raw_request(sendgrid, body, headers=("Connection: close",)))
        status, headers, _ = read_response(stream)
        assert status == 202 and headers["connection"] == "close"
        assert closed_by_server(sock)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_and_the_connection_stays_usable(
    sendgrid: SendGridStandIn, method: str
) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request(sendgrid, b'{"a": 1}', method=method))
        status, _, body = read_response(stream)
        assert status == 405 and json.loads(body)["errors"][0]["message"] == "Method Not Allowed"
        sock.sendall(raw_request(sendgrid, json.dumps(payload()).encode()))
        assert read_response(stream)[0] == 202


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_unsupported_methods_get_501_and_close(sendgrid: SendGridStandIn, method: str) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request(sendgrid, b"", method=method))
        status, headers, _ = read_response(stream)
        assert status == 501 and headers["connection"] == "close"


def test_expect_100_continue_is_answered(sendgrid: SendGridStandIn) -> None:
    body = json.dumps(payload()).encode()
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(
            raw_request(sendgrid, b"", headers=("Expect: 100-continue",), length=len(body))
        )
        assert read_response(stream)[0] == 100
        sock.sendall(body)
        assert read_response(stream)[0] == 202


def test_a_malformed_request_gets_400_and_is_closed(
    sendgrid: SendGridStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"this is not HTTP\r\n\r\n")
        status, headers, _ = read_response(stream)
        assert status == 400 and headers["connection"] == "close"
        assert closed_by_server(sock)
    assert capfd.readouterr() == ("", "")


def test_a_chunked_body_is_read_and_limited_like_any_other(
    sendgrid: SendGridStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps(payload()).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:10], body[10:])) + b"0\r\n\r\n"
    request = raw_request(sendgrid, chunked, headers=("Transfer-Encoding: chunked",))
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(request)
        assert read_response(stream)[0] == 202
        monkeypatch.setattr(sendgrid_contract, "MAX_BODY_BYTES", len(body) - 1)
        sock.sendall(request)
        status, headers, _ = read_response(stream)
        assert status == 413 and headers["connection"] == "close"
        assert closed_by_server(sock)
    assert len(sendgrid.accepted) == 1


def test_a_declared_body_over_the_limit_is_read_then_refused_and_closed(
    sendgrid: SendGridStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendgrid_contract, "MAX_BODY_BYTES", 1000)
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request(sendgrid, b" " * 5000))
        status, headers, _ = read_response(stream)
        assert status == 413 and headers["connection"] == "close"
        assert closed_by_server(sock)
    assert sendgrid.accepted == []


def test_http_1_0_is_answered_then_closed(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        request = raw_request(
            sendgrid, json.dumps(payload()).encode(), headers=("Connection: keep-alive",)
        )
        sock.sendall(request.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        status, headers, _ = read_response(stream)
        assert status == 202 and headers["connection"] == "close"
        assert closed_by_server(sock)
