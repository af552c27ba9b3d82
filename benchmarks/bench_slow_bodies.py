"""``drip serve`` under slow, large request bodies (slowloris with a body): memory and a normal request.

``drip serve`` runs as a subprocess in a ``drip init`` folder with a SendGrid verification key.
100 connections each announce a 5 MB body to ``POST /webhooks/sendgrid`` with fresh signature
headers (a forged signature can only be found out once the body is read), send 4 MB of it at full
speed, and stall. Meanwhile a normal request — a signed batch of 10 events to the same endpoint —
is sent once a second and timed.

- ``slow_bodies.rss_growth``: the server's resident memory (``/proc/<pid>/status`` VmRSS) at its
  highest while the connections are open, minus before (MB). Goal: < 50 MB.
- ``slow_bodies.normal_request``: the slowest of the normal requests meanwhile (ms), with
  ``statuses`` (every one should be 200). Goal: < 1,000 ms.
- ``slow_bodies.stalled``: how the stalled connections ended within ``wait_s`` (their status
  lines, or ``open`` for a connection the server still holds).

``--quick``: 20 connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from benchmarks.common import Context, measurement
from dripengine.testing.sendgrid_webhook import Signer, sendgrid_event
from dripengine.testing.serve_process import ServeProcess

ANNOUNCED = 5_000_000
SENT = 4_000_000
PATH = "/webhooks/sendgrid"
WAIT_S = 12.0


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    from dripengine.cli import main

    connections = ctx.size(100, 20)
    folder = ctx.tmp / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DRIP_")}
    result = CliRunner().invoke(main, ["init", str(folder)], env={**cleared, **env})
    if result.exit_code != 0:
        raise RuntimeError(f"drip init failed: {result.output}")
    signer = Signer.generate()
    env["DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY"] = signer.public_key
    with ServeProcess(folder, env=env, clean_env=True) as server:
        assert server.process is not None
        pid = server.process.pid
        before = _rss_mb(pid)
        peak = before
        sockets = []
        payload = b"[" + b" " * (SENT - 2)
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            stamp = str(int(time.time()))
            head = (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {ANNOUNCED}\r\n"
                f"X-Twilio-Email-Event-Webhook-Timestamp: {stamp}\r\n"
                "X-Twilio-Email-Event-Webhook-Signature: MEUCIQDforgedforgedforgedforgedAAAAAAAA==\r\n"
                "\r\n"
            ).encode()
            try:
                sock.sendall(head)
                sock.settimeout(0.05)
                with contextlib.suppress(TimeoutError, OSError):
                    sock.sendall(payload)  # the server stops reading: that is the point
            finally:
                sock.settimeout(30)
            sockets.append(sock)
            peak = max(peak, _rss_mb(pid))
        timings: list[float] = []
        statuses: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < WAIT_S:
            peak = max(peak, _rss_mb(pid))
            body = json.dumps(
                [sendgrid_event("delivered", timestamp=int(time.time())) for _ in range(10)]
            ).encode()
            t0 = time.perf_counter()
            answer = server.post(PATH, body, signer.headers(body, int(time.time())), timeout=10.0)
            timings.append((time.perf_counter() - t0) * 1000)
            statuses.append(answer.status)
            time.sleep(1.0)
        peak = max(peak, _rss_mb(pid))
        ends = Counter(_ending(sock) for sock in sockets)
        for sock in sockets:
            sock.close()
    yield measurement(
        "slow_bodies.rss_growth",
        peak - before,
        "MB",
        connections=connections,
        announced_bytes=ANNOUNCED,
        sent_bytes=SENT,
        rss_before_mb=round(before, 1),
        rss_peak_mb=round(peak, 1),
        target=50.0,
        meets_target=peak - before < 50.0,
    )
    yield measurement(
        "slow_bodies.normal_request",
        max(timings),
        "ms",
        requests=len(timings),
        median_ms=round(sorted(timings)[len(timings) // 2], 1),
        statuses=dict(Counter(statuses)),
        target=1000.0,
        meets_target=max(timings) < 1000.0 and set(statuses) == {200},
    )
    yield measurement(
        "slow_bodies.stalled",
        float(sum(n for end, n in ends.items() if end != "open")),
        "connections answered",
        wait_s=WAIT_S,
        endings=dict(ends),
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ending(sock: socket.socket) -> str:
    """The status line the server sent on a stalled connection, or ``open``."""
    sock.settimeout(0.2)
    try:
        data = sock.recv(200)
    except TimeoutError:
        return "open"
    except OSError:
        return "reset"
    if not data:
        return "closed"
    return data.split(b"\r\n", 1)[0].decode("latin-1")
