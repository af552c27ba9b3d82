"""The SendGrid provider's HTTP/1.1 client (answers parsed by llhttp) against a scripted server on loopback (plain and TLS)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dripengine.providers.http_pool import KeepAliveClient, ProtocolError, Response

OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nX-Message-Id: abc\r\n\r\n"

# What the server answers: bytes for each request on a connection, or a callable (request -> bytes);
# None closes the connection without an answer.
Script = list[bytes | Callable[[bytes], bytes | None] | None]


class ScriptedServer:
    """Answers request n of every connection with ``script[n]``; then closes that connection."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
            stream = connection.makefile("rb")
            for step in self.script:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                request = head + stream.read(length)
                self.requests.append(request)
                answer = step(request) if callable(step) else step
                if answer is None:
                    return
                connection.sendall(answer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()

    def close(self) -> None:
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script, **options: object) -> ScriptedServer:
        server = ScriptedServer(script, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client(url: str, **options: object) -> KeepAliveClient:
    settings: dict[str, object] = {
        "max_connections": 4,
        "connect_timeout": 2.0,
        "timeout": 2.0,
        "thread_name": "keepalive-test",
    }
    settings.update(options)
    return KeepAliveClient(url, {"Authorization": "Bearer k"}, **settings)  # type: ignore[arg-type]


def post(http: KeepAliveClient, body: bytes = b'{"a": 1}') -> Response:
    return http.run(http.request("POST", "/v3/mail/send", body))


def test_a_post_reuses_its_connection_and_sends_host_length_and_headers(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve([OK, OK, OK])
    http = client(server.url)
    try:
        answers = [post(http, b'{"n": %d}' % n) for n in range(3)]
    finally:
        http.close()
    assert [a.status for a in answers] == [202, 202, 202]
    assert answers[0].headers.get("x-message-id") == "abc" and answers[0].data == b""
    assert server.connections == 1 and http.connections_opened == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v3/mail/send HTTP/1.1\r\n")
    assert f"Host: localhost:{server.port}\r\n".encode() in first
    assert b"Authorization: Bearer k\r\n" in first and b"Content-Length: 8\r\n" in first
    assert first.endswith(b'\r\n\r\n{"n": 0}')
    assert not [t for t in threading.enumerate() if t.name == "keepalive-test"]


def test_chunked_answers_interim_answers_and_repeated_headers(
    serve: Callable[..., ScriptedServer],
) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nVary: a\r\nvary: b\r\n\r\n"
        b'8;ext=1\r\n{"errors\r\n5\r\n": []\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n'
    )
    server = serve([chunked, OK])
    http = client(server.url)
    try:
        first, second = post(http), post(http)
    finally:
        http.close()
    assert (first.status, first.reason, first.data) == (400, "Bad Request", b'{"errors": []}')
    assert first.headers.get("VARY") == "a, b"
    assert second.status == 202 and server.connections == 1  # still in step after the trailer


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 202 Accepted\r\n\r\nok",  # no length: the body runs to the close
    ],
)
def test_a_connection_the_server_ends_is_not_reused(
    serve: Callable[..., ScriptedServer], answer: bytes
) -> None:
    server = serve([answer])
    http = client(server.url)
    try:
        answers = [post(http), post(http)]
    finally:
        http.close()
    assert [(a.status, a.data) for a in answers] == [(202, b"ok"), (202, b"ok")]
    assert server.connections == 2


def test_a_kept_connection_closed_by_the_server_while_idle_is_replaced(
    serve: Callable[..., ScriptedServer],
) -> None:
    closed = threading.Event()

    def then_close(_request: bytes) -> bytes:
        closed.set()
        return OK

    server = serve([then_close])  # one answer, then the server closes the idle connection
    http = client(server.url)
    try:
        assert post(http).status == 202
        closed.wait(2)
        for _ in range(50):  # the loop sees the EOF as soon as it arrives
            if not http._idle or not http._idle[0].usable():
                break
            threading.Event().wait(0.01)
        assert post(http).status == 202  # a new connection, no error
    finally:
        http.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (None, EOFError),  # closed without an answer
        (b"HTTP/1.1 202 Acc", EOFError),  # closed in the status line
        (b"HTTP/1.1 202 Accepted\r\nContent-Le", EOFError),  # in the headers
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nshort", EOFError),
        (b"SMTP ready\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 2x2 Accepted\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: 1_0\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 202 Accepted\r\nno colon here\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", ProtocolError),
    ],
)
def test_broken_answers_raise_and_the_connection_is_dropped(
    serve: Callable[..., ScriptedServer], answer: bytes | None, error: type[Exception]
) -> None:
    def broken(_request: bytes) -> bytes | None:
        return answer

    server = serve([broken])
    http = client(server.url)
    try:
        with pytest.raises(error):
            post(http)
        assert http._idle == []
    finally:
        http.close()


@pytest.mark.parametrize(
    "answer",
    [
        # both framings: the hand-written client took the chunked one (a smuggling pattern)
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",  # obs-fold
        b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",  # NUL in a value
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",  # bare LF line ends
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n",  # headers over 64 kB
    ],
)
def test_answers_llhttp_refuses_are_protocol_errors(
    serve: Callable[..., ScriptedServer], answer: bytes
) -> None:
    server = serve([answer, answer])
    http = client(server.url)
    try:
        with pytest.raises(ProtocolError):
            post(http)
        assert http._idle == []
    finally:
        http.close()


def test_bytes_after_the_answer_put_the_connection_out_of_use(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve([OK + b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n", OK])
    http = client(server.url)
    try:
        answers = [post(http), post(http)]
    finally:
        http.close()
    # the stale second answer is never taken for the next request's: a new connection is opened
    assert [a.status for a in answers] == [202, 202]
    assert server.connections == 2 and http.connections_opened == 2


def test_a_head_answer_has_no_body_and_its_connection_is_not_kept(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"])
    http = client(server.url)
    try:
        answer = http.run(http.request("HEAD", "/", b""))
        assert (answer.status, answer.headers.get("content-length"), answer.data) == (200, "5", b"")
        assert http._idle == []
    finally:
        http.close()


def test_a_body_running_to_the_close_after_a_non_chunked_transfer_coding(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw"])
    http = client(server.url)
    try:
        answer = post(http)
    finally:
        http.close()
    assert (answer.status, answer.data) == (200, b"raw")


def test_no_answer_in_time_is_a_timeout(serve: Callable[..., ScriptedServer]) -> None:
    release = threading.Event()

    def stall(_request: bytes) -> bytes:
        release.wait(5)
        return OK

    server = serve([stall])
    http = client(server.url, timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            post(http)
    finally:
        release.set()
        http.close()


def test_at_most_max_connections_requests_are_in_flight(
    serve: Callable[..., ScriptedServer],
) -> None:
    lock = threading.Lock()
    now = [0]
    peak = [0]

    def counted(_request: bytes) -> bytes:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        threading.Event().wait(0.05)
        with lock:
            now[0] -= 1
        return OK

    server = serve([counted] * 10)
    http = client(server.url, max_connections=3)

    async def many() -> list[Response]:
        import asyncio

        return await asyncio.gather(*(http.request("POST", "/", b"{}") for _ in range(12)))

    try:
        answers = http.run(many())
    finally:
        http.close()
    assert [a.status for a in answers] == [202] * 12
    assert peak[0] == 3 and server.connections == 3


def test_a_line_break_in_a_fixed_header_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        KeepAliveClient(
            "http://localhost",
            {"Authorization": "Bearer k\r\nX: y"},
            max_connections=1,
            connect_timeout=1,
            timeout=1,
        )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_verifies_the_server_and_keeps_the_connection(
    serve: Callable[..., ScriptedServer], certificate: tuple[Path, Path]
) -> None:
    cert_path, key_path = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_path, key_path)
    server = serve([OK, OK], tls=server_side)
    trusting = ssl.create_default_context(cafile=str(cert_path))
    http = client(server.url, ssl_context=trusting)
    try:
        assert [post(http).status, post(http).status] == [202, 202]
    finally:
        http.close()
    assert server.connections == 1
    stranger = client(server.url)  # the system's CAs do not know this certificate
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            post(stranger)
    finally:
        stranger.close()
