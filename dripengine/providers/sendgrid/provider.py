"""``sendgrid``: SendGrid's v3 ``POST /v3/mail/send``, many requests in flight on kept-alive connections.

The payload is built with the official library's ``Mail`` helper (``sendgrid.helpers.mail``), so
its shape is SendGrid's own. It is *not* sent with the library's transport: python_http_client
opens a new connection for every request (urllib, ``Connection: close``), and over HTTPS it also
builds a fresh SSL context per request, reloading the CA bundle — measured against a loopback
HTTPS stand-in: 39 emails/s as is, 1,435/s with a kept-alive client, before any network round trip.

Why this transport: a round trip to SendGrid is mostly waiting, so ``max_in_flight`` requests are
kept in flight, each on its own kept-alive connection (one SSL context for all of them). At first
that was ``max_in_flight`` threads on one ``urllib3`` pool; measured here against the stand-in in
another process, 3,000 emails, 50 ms a request + 100 ms a new connection (requests/s, client CPU
per request):

    in flight   httpx.Client shared   urllib3 pool     http.client per thread
    8           151/s   760 µs        152/s  415 µs    154/s  265 µs
    64          616/s  1292 µs       1122/s  392 µs   1180/s  184 µs
    no latency: 8 → httpx 1,479/s, urllib3 2,900/s; 64 → httpx 546/s, urllib3 2,484/s

httpx spends 0.5 to 1.6 ms of CPU a request, growing with the threads sharing its pool (and its
AsyncClient at 64 in flight was slower still: 93/s at 50 ms). urllib3's ~0.4 ms a request was
then most of ``drip run``'s CPU: 64 threads re-taking one interpreter lock after every socket call
also slowed the dispatcher's own threads, and ``drip run`` stayed under 1,000 emails/s. Now the
requests run on one asyncio thread (:mod:`dripengine.providers.http_pool`, kept-alive connections
whose answers llhttp parses): ~65 µs of CPU a request for the same work, no lock hand-overs
between 64 threads (aiohttp cost about twice that: ``benchmarks/README.md``). ``max_in_flight``
defaults to 128: at 8, a 50 ms round trip caps sending at 160 emails/s.
``benchmarks/bench_sendgrid.py`` and ``benchmarks/bench_http_client.py`` measure it.

No request is retried here: a POST retried after a lost answer can duplicate
the email; the dispatcher decides, and ``docs/providers/sendgrid.md`` states the guarantee.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import parseaddr, parsedate_to_datetime
from email.utils import quote as quote_name
from typing import Any
from urllib.parse import urlsplit

import orjson
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    From,
    Header,
    HtmlContent,
    Mail,
    PlainTextContent,
    ReplyTo,
    Subject,
    To,
)
from sendgrid.helpers.mail.validators import ValidateApiKey

from dripengine import __version__
from dripengine.config import SendGridSettings
from dripengine.exceptions import ConfigError
from dripengine.mail.headers import check as check_header
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.base import Provider, SendResult
from dripengine.providers.http_pool import KeepAliveClient, ProtocolError, Response
from dripengine.storage import Engine

DEFAULT_HOST = "https://api.sendgrid.com"
EU_HOST = "https://api.eu.sendgrid.com"
SEND_PATH = "/v3/mail/send"
# the setting's default (sendgrid.max_in_flight); see the module docstring: 8 caps 50 ms at 160/s
DEFAULT_MAX_IN_FLIGHT: int = SendGridSettings.model_fields["max_in_flight"].default
UID_ARG = "drip_uid"  # our message id in custom_args: SendGrid echoes it in every event
KEY_SETTING = "SENDGRID_API_KEY"
HOST_SETTING = "DRIP_SENDGRID_HOST"
MAX_FRAMES = 1024  # payload frames kept (one a sender, reply-to, categories and parts: a step)
_API_KEY_CHECK = ValidateApiKey()  # what the helper's content classes run on every body


class SendGridProvider(Provider):
    name = "sendgrid"
    tracks_engagement = True  # its click and open tracking, reported by the event webhook

    def __init__(
        self,
        api_key: str | None,
        *,
        host: str = DEFAULT_HOST,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key or ""
        self.host = host.rstrip("/")
        self.max_in_flight = max(1, max_in_flight)
        self._clock = clock
        self._headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"dripengine/{__version__}",
        }
        self.timeout = timeout
        self._client: KeepAliveClient | None = None
        self._lock = threading.Lock()
        self._frames: dict[tuple[Any, ...], dict[str, Any]] = {}

    def check(self) -> None:
        if not self.api_key.strip():
            raise ConfigError(
                f"{KEY_SETTING} is not set: the sendgrid provider needs an API key with the "
                '"Mail Send" permission (or use DRIP_PROVIDER=outbox)'
            )
        if any(not (" " < c <= "\xff") or c == "\x7f" for c in self.api_key):
            raise ConfigError(
                f"{KEY_SETTING} holds a space, a line break or a character no API key has"
            )
        try:
            url = urlsplit(self.host)
            url.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"{HOST_SETTING} {self.host!r} is not an http(s) URL "
                f"(SendGrid: {DEFAULT_HOST}, EU: {EU_HOST})"
            )

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """One result per email, in input order. Raises ConfigError when SendGrid refuses the key."""
        self.check()
        if not emails:
            return []
        client = self.client
        return client.run(self._send_all(client, emails))

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def client(self) -> KeepAliveClient:
        """The kept-alive connections and their loop thread (made on first use, after :meth:`check`)."""
        with self._lock:
            if self._client is None:
                self._client = KeepAliveClient(
                    self.host,
                    self._headers,
                    max_connections=self.max_in_flight,
                    connect_timeout=min(self.timeout, 10.0),
                    timeout=self.timeout,
                    thread_name="sendgrid-io",
                )
            return self._client

    async def _send_all(
        self, client: KeepAliveClient, emails: Sequence[OutgoingEmail]
    ) -> list[SendResult]:
        """Up to ``max_in_flight`` workers, each taking the next email when its answer is in."""
        results: list[SendResult | None] = [None] * len(emails)
        queue = iter(enumerate(emails))

        async def worker() -> None:
            for index, email in queue:
                results[index] = await self._send_one(client, email)

        workers = [
            asyncio.create_task(worker()) for _ in range(min(self.max_in_flight, len(emails)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # a ConfigError (the key refused): what has not started never will
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        assert all(result is not None for result in results)
        return results  # type: ignore[return-value]

    # -- one email ---------------------------------------------------------------------------

    def payload(self, email: OutgoingEmail) -> dict[str, Any]:
        """The mail/send JSON for ``email``: what :meth:`mail_payload` builds, at a fraction of the cost.

        The ``Mail`` helper costs ~90 µs an email (three address parses, a dozen helper objects
        and their ``get()``), and most of what it builds is the same for every email with the same
        sender, reply-to, categories and parts: the campaign's step. That frame is built once with
        the helper (:meth:`mail_payload` of the first such email) and kept; each email then puts
        its own fields into a copy of it: the recipient (the helper's ``To``), subject, content
        values (after the helper's own API-key check), headers and custom_args. The result is
        equal to the helper's, key order included (tests/test_sendgrid_provider.py compares them).
        The frame's shared parts are not copied: treat the result as read-only.
        """
        headers = _headers(email)  # refuses a control character in any header first
        key = (email.sender, email.reply_to, email.categories, bool(email.text), bool(email.html))
        frame = self._frames.get(key)
        if frame is None:
            frame = self.mail_payload(email)
            if len(self._frames) >= MAX_FRAMES:
                self._frames.clear()
            self._frames[key] = frame
        to_name, to = parseaddr(email.to)
        recipient = To(to, _personalization_name(to_name))
        if recipient.email is None:
            raise ValueError(f"no address in {email.to!r}")
        body = dict(frame)
        body["subject"] = Subject(email.subject).get()
        body["personalizations"] = [{"to": [recipient.get()]}]
        if "content" in frame:
            values = {"text/plain": email.text, "text/html": email.html}
            for value in values.values():
                _API_KEY_CHECK.validate_message_text(value)
            body["content"] = [
                {"type": part["type"], "value": values[part["type"]]} for part in frame["content"]
            ]
        body["headers"] = headers
        body["custom_args"] = {UID_ARG: email.uid}
        return body

    def mail_payload(self, email: OutgoingEmail) -> dict[str, Any]:
        """The mail/send JSON for ``email``, built entirely with the library's ``Mail`` helper."""
        headers = _headers(email)
        sender_name, sender = parseaddr(email.sender)
        to_name, to = parseaddr(email.to)
        mail = Mail(
            from_email=From(sender, sender_name or None),
            to_emails=To(to, _personalization_name(to_name)),
            subject=Subject(email.subject),
            plain_text_content=PlainTextContent(email.text) if email.text else None,
            html_content=HtmlContent(email.html) if email.html else None,
        )
        if email.reply_to:
            reply_name, reply = parseaddr(email.reply_to)
            mail.reply_to = ReplyTo(reply, reply_name or None)
        # Our id, for events; never personal data: SendGrid cannot redact custom_args/categories.
        mail.custom_arg = CustomArg(UID_ARG, email.uid)
        for category in reversed(email.categories):  # the helper prepends; keep our order
            mail.add_category(Category(category))
        for name, value in reversed(headers.items()):
            mail.add_header(Header(name, value))
        result: dict[str, Any] = mail.get()
        return result

    async def _send_one(self, client: KeepAliveClient, email: OutgoingEmail) -> SendResult:
        try:
            # orjson: UTF-8 JSON in ~9 µs for an 11 kB email, json.dumps(...).encode() ~55 µs
            body = orjson.dumps(self.payload(email))
        except Exception as exc:  # the helper raises TypeError/ValueError/its own; never sendable
            return SendResult(email.uid, "failed", error=f"not a valid message: {exc}")
        try:
            response = await client.request("POST", SEND_PATH, body)
        except TimeoutError:
            return SendResult(
                email.uid, "retry", error=f"SendGrid timed out: no answer within {self.timeout:g} s"
            )
        except (OSError, EOFError, ProtocolError) as exc:  # refused, reset, closed, garbled
            return SendResult(
                email.uid, "retry", error=f"SendGrid connection failed: {_describe(exc)}"
            )
        return self._result(email, response)

    def _result(self, email: OutgoingEmail, response: Response) -> SendResult:
        status = response.status
        if 200 <= status < 300:
            return SendResult(
                email.uid, "sent", provider_message_id=response.headers.get("X-Message-Id")
            )
        detail = _error_messages(response)
        if status in (401, 403):
            raise ConfigError(
                f"SendGrid refused the API key ({status}: {detail}); check {KEY_SETTING} "
                '(it needs the "Mail Send" permission)'
            )
        if status == 429:
            return SendResult(
                email.uid,
                "retry",
                error=f"SendGrid rate limit (429): {detail}",
                retry_after=self._wait(response),
            )
        if status >= 500 or status == 408:
            return SendResult(email.uid, "retry", error=f"SendGrid answered {status}: {detail}")
        return SendResult(email.uid, "failed", error=f"SendGrid refused ({status}): {detail}")

    def _wait(self, response: Response) -> float | None:
        """Seconds to wait: ``Retry-After`` (seconds or a date), else ``X-RateLimit-Reset``."""
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    return max(0.0, parsedate_to_datetime(retry_after).timestamp() - self._clock())
                except (TypeError, ValueError):
                    pass
        reset = response.headers.get("X-RateLimit-Reset")
        if reset:
            try:
                return max(0.0, float(reset) - self._clock())
            except ValueError:
                pass
        return None

    # --- besides sending ---------------------------------------------------------------------------

    title = "SendGrid"

    @classmethod
    def settle_unknown(cls, engine: Engine, now: datetime, grace_hours: float) -> int:
        """Past the grace period, with the Event Webhook known to deliver: failed, not resent
        (:mod:`dripengine.providers.sendgrid.unknown`)."""
        from dripengine.providers.sendgrid.unknown import settle_unknown

        return settle_unknown(engine, now, grace_hours)


def _headers(email: OutgoingEmail) -> dict[str, str]:
    """The email's headers for SendGrid; ValueError for a control character in any header."""
    for what, value in (
        ("From", email.sender),
        ("To", email.to),
        ("Reply-To", email.reply_to or ""),
        ("Subject", email.subject),
        ("List-Unsubscribe", email.unsubscribe_url or ""),
        *email.headers.items(),
    ):
        check_header(what, value)  # raw, and inside any RFC 2047 encoded word
    # Message-ID is not on SendGrid's reserved-header list, so ours goes out as is (the
    # recipient's threading and our outbox/SMTP copies agree). SendGrid's `smtp-id` event
    # field does not reliably reflect it (django-anymail's finding), so events are matched by
    # the drip_uid custom arg instead.
    headers = {"Message-ID": email.message_id}
    if email.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers.update(email.headers)
    return headers


def _personalization_name(name: str) -> str | None:
    """SendGrid refuses ``,`` and ``;`` in to-names; a quoted name gets through (django-anymail)."""
    if not name:
        return None
    return f'"{quote_name(name)}"' if ("," in name or ";" in name) else name


def _error_messages(response: Response) -> str:
    """SendGrid's ``errors[].message`` (with the field), joined; else the start of the body."""
    try:
        errors = json.loads(response.data)["errors"]
        parts = [
            f"{e['message']} ({e['field']})" if e.get("field") else str(e["message"])
            for e in errors
        ]
    except (ValueError, KeyError, TypeError):
        text = response.data[:200].decode("utf-8", "replace").strip()
        return text or str(response.reason)
    return "; ".join(parts) or str(response.reason)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
