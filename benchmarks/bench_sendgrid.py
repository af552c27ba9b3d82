"""Sending through SendGrid: our provider against the official library as is, emails/s.

Both post the same payloads (built by ``SendGridProvider.payload`` with the library's ``Mail``
helper) to the SendGrid stand-in running in its own process (so its threads do not share the
client's GIL), over plain HTTP on loopback: the library's extra cost over HTTPS (a fresh SSL
context per request) is not in these figures, only its one-connection-per-request transport.

- baseline: ``SendGridAPIClient(api_key, host=…)`` and ``client.send(payload)``, one at a time.
- ours: ``SendGridProvider.send(batch)``: ``max_in_flight`` requests on kept-alive connections.

Twice: with no latency, and with the stand-in sleeping 50 ms a request + 100 ms a new connection
(what a real round trip and TLS handshake cost). Also ours at 8 in flight, to show the choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sendgrid import SendGridAPIClient

from benchmarks.common import Context, compared, measurement, timed
from benchmarks.fast_standin import fast_standin_process
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.sendgrid.provider import DEFAULT_MAX_IN_FLIGHT, SendGridProvider

HTML = "<table><tr><td><p>Hello {name},</p>" + "<p>A paragraph about your trial.</p>" * 40
TEXT = "Hello {name},\n\n" + "A paragraph about your trial.\n\n" * 40
TRANSPORT = "plain HTTP on loopback; stand-in in its own process"


def make_emails(count: int) -> list[OutgoingEmail]:
    created = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    return [
        OutgoingEmail(
            uid=f"bench-{n:06d}",
            sender="Acme Sales <sales@acme.example>",
            to=f"Lead {n} <lead{n}@example.com>",
            subject="About your trial",
            html=HTML.format(name=f"Lead {n}") + "</td></tr></table>",
            text=TEXT.format(name=f"Lead {n}"),
            created_at=created,
            unsubscribe_url=f"https://acme.example/u/token-{n}",
            categories=("campaign:lost-sql", "step:checkin"),
        )
        for n in range(count)
    ]


def library_as_is(url: str, key: str, emails: Sequence[OutgoingEmail]) -> float:
    """The naive way: the library's own client, one email after the other; emails/s."""
    builder = SendGridProvider(key, host=url)
    payloads = [builder.payload(email) for email in emails]
    builder.close()
    client = SendGridAPIClient(key, host=url)

    def send_all() -> None:
        for payload in payloads:
            response = client.send(payload)
            assert response.status_code == 202, response.status_code

    _, seconds = timed(send_all)
    return len(emails) / seconds


def ours(url: str, key: str, emails: Sequence[OutgoingEmail], in_flight: int) -> float:
    provider = SendGridProvider(key, host=url, max_in_flight=in_flight)
    try:
        provider.send(emails[: in_flight * 2])  # warm: threads and kept-alive connections
        results, seconds = timed(lambda: provider.send(emails))
    finally:
        provider.close()
    failed = [r for r in results if r.status != "sent"]
    assert not failed, failed[:3]
    return len(emails) / seconds


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    default = DEFAULT_MAX_IN_FLIGHT
    cases = [
        ("no_latency", 0.0, 0.0, ctx.size(500, 50), ctx.size(5_000, 300)),
        ("latency_50ms", 0.05, 0.1, ctx.size(40, 6), ctx.size(3_000, 300)),
    ]
    for label, per_request, per_connection, naive_count, count in cases:
        with fast_standin_process(per_request=per_request, per_connection=per_connection) as (
            url,
            key,
        ):
            naive = library_as_is(url, key, make_emails(naive_count))
            emails = make_emails(count)
            fast = ours(url, key, emails, default)
            eight = ours(url, key, emails, 8)
        extra = {
            "latency": f"{per_request * 1000:g} ms a request + {per_connection * 1000:g} ms a new connection",
            "transport": TRANSPORT,
        }
        yield compared(
            f"sendgrid.{label}.provider",
            fast,
            naive,
            "emails/s",
            baseline_is="sendgrid library as is: SendGridAPIClient.send, one at a time",
            emails=count,
            baseline_emails=naive_count,
            max_in_flight=default,
            **extra,
        )
        yield measurement(
            f"sendgrid.{label}.provider_8_in_flight", eight, "emails/s", emails=count, **extra
        )
