"""The SendGrid stand-in answers the way SendGrid documents ``POST /v3/mail/send`` (plain http.client)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dripengine.testing import SendGridStandIn, sendgrid_standin
from dripengine.testing.sendgrid_standin import MAX_BODY_BYTES, RESERVED_HEADERS
from tests.waiting import wait_for

NOW = 1_800_000_000.0


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(clock=lambda: NOW) as standin:
        yield standin


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": "news@acme.example", "name": "Acme"},
        "subject": "Hello",
        "personalizations": [{"to": [{"email": "lead@example.com", "name": "Lead"}]}],
        "content": [
            {"type": "text/plain", "value": "Hi"},
            {"type": "text/html", "value": "<p>Hi</p>"},
        ],
        "custom_args": {"drip_uid": "m-1"},
    }
    body.update(changes)
    return body


class Client:
    """One kept-alive connection, like a pooled client's."""

    def __init__(self, standin: SendGridStandIn, key: str | None = None) -> None:
        host, port = standin.url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)
        self.key = standin.api_key if key is None else key

    def post(
        self, body: Any, *, raw: bytes | None = None, path: str = "/v3/mail/send"
    ) -> tuple[int, dict[str, str], Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        self.connection.request("POST", path, body=data, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        return (
            response.status,
            dict(response.getheaders()),
            json.loads(content) if content else None,
        )

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


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"personalizations": []}, "personalizations", "at least one personalization"),
        (
            {"personalizations": [{"to": [{"email": f"l{i}@example.com"}]} for i in range(1001)]},
            "personalizations",
            "limited to 1000 personalizations",
        ),
        (
            {"personalizations": [{"cc": [{"email": "a@example.com"}]}]},
            "personalizations.0.to",
            "to array is required",
        ),
        (
            {"personalizations": [{"to": [{"email": "not-an-address"}]}]},
            "personalizations.0.to.0.email",
            "valid address",
        ),
        (
            {
                "personalizations": [
                    {"to": [{"email": "a@example.com"}], "bcc": [{"email": "A@example.com"}]}
                ]
            },
            "personalizations.0.bcc.0.email",
            "only be included once",
        ),
        (
            {"personalizations": [{"to": [{"email": "a@example.com", "name": "Doe, Jane"}]}]},
            "personalizations.0.to.0.name",
            "; or ,",
        ),
        ({"from": {"name": "Acme"}}, "from.email", "from object must be provided"),
        ({"from": {"email": "acme"}}, "from.email", "valid address"),
        ({"subject": ""}, "subject", "subject is required"),
        ({"content": []}, "content", "content parameter is required"),
        (
            {"content": [{"type": "text/plain", "value": ""}]},
            "content.0.value",
            "at least one character",
        ),
        (
            {
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            },
            "content",
            "text/plain, text/html",
        ),
        ({"custom_args": {"n": 1}}, "custom_args.n", "Expected: string"),
        ({"categories": [f"c{i}" for i in range(11)]}, "categories", "more than 10 categories"),
        ({"categories": ["x" * 256]}, "categories.0", "more than 255 characters"),
        ({"send_at": int(NOW) + 72 * 3600 + 1}, "send_at", "72 hours"),
        (
            {"reply_to": {"email": "a@acme.example"}, "reply_to_list": []},
            "reply_to",
            "mutually exclusive",
        ),
    ],
)
def test_each_documented_rule_is_a_400_naming_the_field(
    sendgrid: SendGridStandIn, client: Client, changes: dict[str, Any], field: str, words: str
) -> None:
    errors = errors_of(client, payload(**changes))
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert sendgrid.accepted == []


def test_more_than_1000_recipients_in_total_is_a_400(client: Client) -> None:
    people = [{"email": f"l{i}@example.com"} for i in range(1001)]
    body = payload(personalizations=[{"to": people[:500]}, {"to": people[500:]}])
    assert any("1000 total recipients" in e["message"] for e in errors_of(client, body))
    body = payload(personalizations=[{"to": people[:500]}, {"to": people[500:1000]}])
    assert client.post(body)[0] == 202


def test_a_subject_in_every_personalization_is_enough(client: Client) -> None:
    body = payload(
        subject=None, personalizations=[{"to": [{"email": "a@example.com"}], "subject": "Hi"}]
    )
    del body["subject"]
    assert client.post(body)[0] == 202
    body["personalizations"].append({"to": [{"email": "b@example.com"}]})
    assert any(e["field"] == "subject" for e in errors_of(client, body))


def test_a_quoted_name_with_a_comma_is_accepted(client: Client) -> None:
    to = [{"email": "a@example.com", "name": '"Doe, Jane"'}]
    assert client.post(payload(personalizations=[{"to": to}]))[0] == 202


def test_custom_args_are_limited_after_merging_top_level_and_personalization(
    client: Client,
) -> None:
    top = {"a": "x" * 5_000}
    own = {"b": "y" * 5_000}
    body = payload(
        custom_args=top, personalizations=[{"to": [{"email": "a@example.com"}], "custom_args": own}]
    )
    errors = errors_of(client, body)
    assert errors[0]["field"] == "personalizations.0.custom_args"
    assert "10000 bytes" in errors[0]["message"]
    own = {"b": "y" * 4_000}
    body["personalizations"][0]["custom_args"] = own
    assert client.post(body)[0] == 202


@pytest.mark.parametrize("name", [*sorted(RESERVED_HEADERS), "X-SG-ID", "Content-Type"])
def test_reserved_headers_are_refused(client: Client, name: str) -> None:
    errors = errors_of(client, payload(headers={name: "x"}))
    assert errors[0]["field"] == f"headers.{name}" and "reserved" in errors[0]["message"]


def test_reserved_headers_are_refused_in_a_personalization_too(client: Client) -> None:
    body = payload(personalizations=[{"to": [{"email": "a@example.com"}], "headers": {"BCC": "x"}}])
    assert errors_of(client, body)[0]["field"] == "personalizations.0.headers.BCC"


def test_message_id_and_list_unsubscribe_headers_are_allowed(client: Client) -> None:
    headers = {
        "Message-ID": "<m-1@acme.example>",
        "List-Unsubscribe": "<https://acme.example/u/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert client.post(payload(headers=headers))[0] == 202


def test_send_at_within_72_hours_is_accepted(client: Client) -> None:
    assert client.post(payload(send_at=int(NOW) + 72 * 3600))[0] == 202


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


def test_idle_connections_are_closed_after_idle_timeout() -> None:
    with SendGridStandIn(idle_timeout=0.2) as standin:
        kept = connect(standin)
        with kept, kept.makefile("rb") as stream:
            kept.sendall(raw_request(standin, json.dumps(payload()).encode()))
            assert read_response(stream)[0] == 202
            started = time.perf_counter()
            assert closed_by_server(kept)
            assert 0.15 <= time.perf_counter() - started < 2
        with connect(standin) as silent:
            started = time.perf_counter()
            assert closed_by_server(silent)
            assert 0.15 <= time.perf_counter() - started < 2
        with connect(standin) as slow_body:  # idle mid-body counts too
            slow_body.sendall(raw_request(standin, b"{", length=100))
            assert closed_by_server(slow_body)
        assert standin.accepted and len(standin.accepted) == 1


def test_connection_close_is_honoured(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        body = json.dumps(payload()).encode()
        sock.sendall(raw_request(sendgrid, body, headers=("Connection: close",)))
        status, headers, _ = read_response(stream)
        assert status == 202 and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_a_half_closed_client_still_gets_its_answer(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request(sendgrid, json.dumps(payload()).encode()))
        sock.shutdown(socket.SHUT_WR)
        assert read_response(stream)[0] == 202
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
        monkeypatch.setattr(sendgrid_standin, "MAX_BODY_BYTES", len(body) - 1)
        sock.sendall(request)
        status, headers, _ = read_response(stream)
        assert status == 413 and headers["connection"] == "close"
        assert closed_by_server(sock)
    assert len(sendgrid.accepted) == 1


def test_a_declared_body_over_the_limit_is_drained_not_kept(
    sendgrid: SendGridStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendgrid_standin, "MAX_BODY_BYTES", 1000)
    reads: list[tuple[int, bytes | None]] = []
    body = sendgrid_standin._Connection._body

    async def spy(self: Any, limit: int) -> bytes | None:
        reads.append((limit, result := await body(self, limit)))
        return result

    monkeypatch.setattr(sendgrid_standin._Connection, "_body", spy)
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request(sendgrid, b" " * 5000))
        status, headers, _ = read_response(stream)
    assert status == 413 and headers["connection"] == "close"
    assert reads == [(-1, None)]  # told by Content-Length: read to the end, nothing kept


VALID = json.dumps(payload()).encode()


@pytest.mark.parametrize(
    "raw",
    [  # what Python's json.loads took: the payload is valid but for a field nothing checks
        VALID[:-1] + b', "batch_id": NaN}',
        VALID[:-1] + b', "batch_id": -Infinity}',
        VALID[:-1] + b', "batch_id": "\\ud800"}',  # a lone surrogate is no Unicode text
        b"[" * 5000 + b"]" * 5000,  # json.loads raised RecursionError: no answer at all
        VALID[:-1] + b', "batch_id": "\xff"}',  # not UTF-8 (a 400 before too)
    ],
)
def test_what_is_not_json_is_a_400_and_the_connection_stays_usable(
    sendgrid: SendGridStandIn, client: Client, raw: bytes
) -> None:
    status, _, answer = client.post(None, raw=raw)
    assert status == 400
    assert answer == {"errors": [{"message": "Bad Request", "field": None, "help": None}]}
    assert sendgrid.accepted == []
    assert client.post(payload())[0] == 202


def test_a_request_asking_to_upgrade_is_answered_as_http_and_reading_goes_on(
    sendgrid: SendGridStandIn,
) -> None:
    body = json.dumps(payload()).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    upgrade = ("Connection: Upgrade", "Upgrade: h2c")
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(
            raw_request(sendgrid, body, headers=upgrade)
            + raw_request(sendgrid, chunked, headers=(*upgrade, "Transfer-Encoding: chunked"))
            + raw_request(sendgrid, b"", method="GET", headers=upgrade)
            + raw_request(sendgrid, body)
        )
        assert [read_response(stream)[0] for _ in range(4)] == [202, 202, 405, 202]
    assert len(sendgrid.accepted) == 3


@pytest.mark.parametrize(
    ("request_line", "headers", "status"),
    [
        ("POST /v3/mail/send HTTP/1.1", "", 400),  # no Host
        ("BREW /v3/mail/send HTTP/1.1", "Host: standin\r\n", 501),  # a method llhttp does not know
        ("POST /v3/mail/send HTTP/1.1", "Host: standin\r\nTransfer-Encoding: gzip\r\n", 501),
        ("CONNECT standin:443 HTTP/1.1", "Host: standin\r\n", 501),
    ],
)
def test_requests_it_cannot_serve_are_refused_and_closed(
    sendgrid: SendGridStandIn, request_line: str, headers: str, status: int
) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(f"{request_line}\r\n{headers}Content-Length: 0\r\n\r\n".encode())
        answer, answer_headers, _ = read_response(stream)
        assert answer == status and answer_headers["connection"] == "close"
        assert closed_by_server(sock)


def test_http_1_0_is_answered_then_closed(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        request = raw_request(
            sendgrid, json.dumps(payload()).encode(), headers=("Connection: keep-alive",)
        )
        sock.sendall(request.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        status, headers, _ = read_response(stream)
        assert status == 202 and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_a_head_still_unfinished_past_16_kib_is_a_431(sendgrid: SendGridStandIn) -> None:
    with connect(sendgrid) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"POST /v3/mail/send HTTP/1.1\r\nHost: standin\r\n")
        with contextlib.suppress(OSError):  # it closes while we still send
            for _ in range(400):  # more than one read's worth, should reads run together
                sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
                time.sleep(0.001)  # the point: the head arrives over many reads
        status, headers, _ = read_response(stream)
        assert status == 431 and headers["connection"] == "close"
