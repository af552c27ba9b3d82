"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook.

In order: the body is read up to ``web.max_body_bytes`` (413 past it); the signature is checked
with the official library's ``EventWebhook`` helper over ``timestamp + body`` and the timestamp
must be within ``webhooks.max_age_seconds`` of now (403 otherwise, unless
``webhooks.verify_signatures`` is false); the body must be a JSON array (400) of at most
``webhooks.max_events`` events (413); each event is read by
:mod:`dripengine.providers.sendgrid.events` (unreadable ones are skipped and counted) and the
rest go through ``Engagement.ingest`` in one transaction. 200 with a small JSON summary.

SendGrid retries what is not answered 2xx, so a 4xx is only for what will never be accepted, and a
5xx only for our own fault (503 when the database is down, or when verification is on and no
public key is set: the events wait at SendGrid until the key is there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.exceptions import ConfigError
from dripengine.providers.sendgrid.events import Skipped, parse_events
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext
from dripengine.web.jsonbody import NotJSON, parse_json

PATH = "/webhooks/sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
KEY_SETTING = "webhooks.sendgrid_public_key (DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY)"
MAX_REASONS = 20  # skipped events listed in the answer (all are counted)

log = logging.getLogger("dripengine.web")


def load_public_key(value: str) -> EllipticCurvePublicKey:
    """The key as SendGrid's settings page shows it (base64 DER); a pasted PEM works too."""
    lines = [line.strip() for line in value.strip().splitlines()]
    body = "".join(line for line in lines if line and not line.startswith("-----"))
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(body)
    except ValueError as exc:
        raise ConfigError(
            f"{KEY_SETTING} is not a public key as SendGrid shows it (base64, starting MFkw…): {exc}"
        ) from None
    if not isinstance(key, EllipticCurvePublicKey):
        raise ConfigError(f"{KEY_SETTING} is not an ECDSA key: paste the Event Webhook's key")
    return key


def header_problem(
    signature: str | None, timestamp: str | None, now: float, max_age: int
) -> str | None:
    """What the signature headers alone show to be wrong: missing, a timestamp that is not unix
    seconds (at most 12 digits: a 5,000-digit one is not a time), or one too old or ahead."""
    if not signature or not timestamp:
        return f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header (is the webhook signed?)"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} is not unix seconds"
    age = now - int(timestamp)
    if abs(age) > max_age:
        when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
        return (
            f"signature timestamp is {when} (webhooks.max_age_seconds is {max_age}): "
            "a replay, or a clock that is wrong"
        )
    return None


def header_check(ctx: WebContext) -> Callable[[Headers], tuple[int, str] | None]:
    """The check :class:`dripengine.web.guard.BodyGuard` runs before reading a body: a request
    the headers already condemn is refused without its 5 MB being read."""
    hooks = ctx.settings.webhooks

    def check(headers: Headers) -> tuple[int, str] | None:
        if not hooks.verify_signatures or not hooks.sendgrid_public_key:
            return None  # the route answers (unsigned accepted, or 503 for the missing key)
        problem = header_problem(
            headers.get(SIGNATURE_HEADER),
            headers.get(TIMESTAMP_HEADER),
            ctx.clock.now().timestamp(),
            hooks.max_age_seconds,
        )
        return None if problem is None else (403, problem)

    return check


def signature_problem(
    body: str,
    signature: str | None,
    timestamp: str | None,
    key: EllipticCurvePublicKey,
    now: float,
    max_age: int,
) -> str | None:
    """Why the request is refused, or None when it is signed by ``key`` and fresh."""
    problem = header_problem(signature, timestamp, now, max_age)
    if problem:
        return problem
    try:
        valid = EventWebhook().verify_signature(body, signature, timestamp, public_key=key)
    except (ValueError, TypeError):  # not base64, not DER
        valid = False
    return None if valid else "the signature does not match the body and the public key"


def routes(ctx: WebContext) -> list[BaseRoute]:
    from dripengine.engagement.ingest import Engagement

    hooks = ctx.settings.webhooks
    verify = hooks.verify_signatures
    key = load_public_key(hooks.sendgrid_public_key) if hooks.sendgrid_public_key else None
    if verify and key is None:
        log.warning(
            "%s answers 503 until %s is set (or webhooks.verify_signatures = false)",
            PATH,
            KEY_SETTING,
        )
    elif not verify:
        log.warning("%s accepts unsigned events: webhooks.verify_signatures is false", PATH)
    engagement = Engagement(ctx.engine, ctx.settings, ctx.sla, ctx.clock)
    limit = ctx.settings.web.max_body_bytes

    async def sendgrid_events(request: Request) -> JSONResponse:
        try:
            raw = await read_limited(request, limit)
        except BodyTooLarge as exc:
            return _error(413, str(exc))
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "the body is not UTF-8 JSON")
        if verify:
            if key is None:
                return _error(503, f"signature verification is on and {KEY_SETTING} is not set")
            problem = signature_problem(
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                key,
                ctx.clock.now().timestamp(),
                hooks.max_age_seconds,
            )
            if problem:
                log.warning("%s refused: %s", PATH, problem)
                return _error(403, problem)
        try:
            payload = parse_json(raw)
        except NotJSON as exc:
            return _error(400, str(exc))
        if not isinstance(payload, list):
            return _error(400, "expected a JSON array of events")
        if len(payload) > hooks.max_events:
            return _error(
                413,
                f"{len(payload)} events in one request (webhooks.max_events is {hooks.max_events})",
            )
        parsed = parse_events(payload)
        for skipped in parsed.skipped:
            log.warning("%s: event %d skipped: %s", PATH, skipped.index, skipped.reason)
        summary: dict[str, Any] = {"received": len(payload), "stored": 0, "duplicates": 0}
        if parsed.events:
            try:
                result = await run_in_threadpool(engagement.ingest, parsed.events)
            except DBAPIError as exc:
                log.error("%s: database error, SendGrid will retry: %s", PATH, exc.orig)
                return _error(503, "database unavailable; retry later")
            summary.update(
                stored=result.stored, duplicates=result.duplicates, unmatched=result.unmatched
            )
            parsed.skipped += [Skipped(-1, why) for _, why in result.skipped]
        summary["skipped"] = len(parsed.skipped)
        if parsed.skipped:
            summary["skipped_events"] = [s.as_dict() for s in parsed.skipped[:MAX_REASONS]]
        return JSONResponse(summary)

    return [Route(PATH, sendgrid_events, methods=["POST"])]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
