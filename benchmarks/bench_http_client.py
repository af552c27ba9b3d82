"""The SendGrid provider's HTTP client alone: CPU a request on its loop thread, and requests/s.

The provider's requests all run on one asyncio thread (its ``client``: ``providers/http_pool.py``,
kept-alive connections whose answers llhttp parses), so that thread's CPU time (``time.thread_time`` read on it before and after)
is the client's cost, whatever else the machine is doing — steadier on a shared box than
``dispatch``'s emails/s. The same pre-encoded mail/send bodies (~3.3 kB of JSON) as ``bench_sendgrid`` (built
once by ``SendGridProvider.payload`` + orjson, outside the timing) are posted to the benchmarks'
stand-in (``benchmarks/fast_standin.py``, its own process) with ``max_in_flight`` requests in flight
on kept-alive connections (warmed first): 5,000 posts (quick: 300), best of 3 rounds.

- ``http_client.no_latency``: the stand-in answers at once (the client is the bottleneck).
- ``http_client.latency_50ms``: 50 ms a request + 100 ms a new connection, as ``dispatch``.

``value`` is µs of the loop thread's CPU a request; ``requests_per_s`` beside it; ``parser`` says
what parses the answers (the client module's ``PARSER``; "hand-written" for a client without one,
so the same file measures an older checkout's client).
``DRIP_BENCH_PROFILE=path`` also writes a cProfile of the loop thread (one no-latency round).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from benchmarks.bench_sendgrid import make_emails
from benchmarks.common import Context, measurement
from benchmarks.fast_standin import fast_standin_process
from dripengine.providers.sendgrid.provider import (
    DEFAULT_MAX_IN_FLIGHT,
    SEND_PATH,
    SendGridProvider,
)

ROUNDS = 3


def bodies(key: str, count: int) -> list[bytes]:
    builder = SendGridProvider(key)
    return [orjson.dumps(builder.payload(email)) for email in make_emails(count)]


async def post_all(
    client: Any, payloads: Sequence[bytes], in_flight: int, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """Post every body, ``in_flight`` at a time; (thread CPU seconds, wall seconds)."""
    queue = iter(payloads)

    async def worker() -> None:
        for body in queue:
            response = await client.request("POST", SEND_PATH, body)
            assert response.status == 202, (response.status, response.data[:200])

    if profile is not None:
        profile.enable()
    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    if profile is not None:
        profile.disable()
    return cpu, wall


def measure(
    url: str, key: str, payloads: Sequence[bytes], in_flight: int, profile_to: str | None
) -> tuple[float, float, str]:
    """Best of ROUNDS: (µs of loop-thread CPU a request, requests/s, what parses the answers)."""
    provider = SendGridProvider(key, host=url, max_in_flight=in_flight)
    client = provider.client
    parser = getattr(sys.modules[type(client).__module__], "PARSER", "hand-written")
    try:
        client.run(post_all(client, payloads[: in_flight * 2], in_flight, None))  # warm
        rounds = [client.run(post_all(client, payloads, in_flight, None)) for _ in range(ROUNDS)]
        if profile_to:
            profile = cProfile.Profile()
            client.run(post_all(client, payloads, in_flight, profile))
            profile.dump_stats(profile_to)
    finally:
        provider.close()
    cpu = min(c for c, _ in rounds)
    wall = min(w for _, w in rounds)
    return cpu / len(payloads) * 1e6, len(payloads) / wall, parser


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    count = ctx.size(5_000, 300)
    in_flight = DEFAULT_MAX_IN_FLIGHT
    profile_to = os.environ.get("DRIP_BENCH_PROFILE")
    for label, per_request, per_connection in (
        ("no_latency", 0.0, 0.0),
        ("latency_50ms", 0.05, 0.1),
    ):
        with fast_standin_process(per_request=per_request, per_connection=per_connection) as (
            url,
            key,
        ):
            payloads = bodies(key, count)
            profile = profile_to if label == "no_latency" else None
            cpu_us, per_s, parser = measure(url, key, payloads, in_flight, profile)
        yield measurement(
            f"http_client.{label}",
            cpu_us,
            "µs CPU/request",
            requests_per_s=round(per_s, 1),
            requests=count,
            body_bytes=len(payloads[0]),
            max_in_flight=in_flight,
            rounds=ROUNDS,
            parser=parser,
            latency=f"{per_request * 1000:g} ms a request + {per_connection * 1000:g} ms a new connection",
        )
