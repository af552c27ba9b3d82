"""``POST`` to each ESP's event webhook: one way for every ESP the provider registry lists.

The ESP's part is its :class:`~dripengine.providers.webhook.EventWebhook` (its path, how a post
proves it is the ESP's, how its events read); the rest is here. In order: the headers the ESP
checks before a body is read (:func:`header_checks`, run by :class:`dripengine.web.guard.BodyGuard`:
403); the body is read up to ``web.max_body_bytes`` (413 past it); it must be UTF-8 (400); the ESP
validates the post (403 when it is not the ESP's, logged; 503 when it cannot be checked yet); the
body must be JSON (400) holding the ESP's events (400) and at most ``webhooks.max_events`` of them
(413); the ESP reads each event (unreadable ones are skipped and counted) and the rest go through
``Engagement.ingest`` in one transaction. 200 with a small JSON summary.

An ESP retries what is not answered 2xx, so a 4xx is only for what will never be accepted, and a
5xx only for our own fault (503 when the database is down: the ESP will retry).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.providers import event_webhooks
from dripengine.providers.webhook import BadPayload, EventWebhook, Skipped
from dripengine.storage import DBAPIError
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext
from dripengine.web.guard import HeaderCheck
from dripengine.web.jsonbody import NotJSON, parse_json

MAX_REASONS = 20  # skipped events listed in the answer (all are counted)

log = logging.getLogger("dripengine.web")


def header_checks(ctx: WebContext) -> dict[str, HeaderCheck]:
    """By path, the checks :class:`dripengine.web.guard.BodyGuard` runs before reading a body: a
    request the headers already condemn is refused without its 5 MB being read."""
    return {webhook.path: _header_check(ctx, webhook) for webhook in event_webhooks(ctx.settings)}


def _header_check(ctx: WebContext, webhook: EventWebhook) -> HeaderCheck:
    def check(headers: Headers) -> tuple[int, str] | None:
        refusal = webhook.check_headers(headers, ctx.clock.now().timestamp())
        return None if refusal is None else (refusal.status, refusal.reason)

    return check


def routes(ctx: WebContext) -> list[BaseRoute]:
    return [_route(ctx, webhook) for webhook in event_webhooks(ctx.settings)]


def _route(ctx: WebContext, webhook: EventWebhook) -> BaseRoute:
    from dripengine.engagement.ingest import Engagement

    for warning in webhook.warnings():
        log.warning("%s", warning)
    path = webhook.path
    max_events = ctx.settings.webhooks.max_events
    engagement = Engagement(ctx.engine, ctx.settings, ctx.sla, ctx.clock)
    limit = ctx.settings.web.max_body_bytes

    async def events(request: Request) -> JSONResponse:
        try:
            raw = await read_limited(request, limit)
        except BodyTooLarge as exc:
            return _error(413, str(exc))
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "the body is not UTF-8 JSON")
        refusal = webhook.validate(request.headers, body, ctx.clock.now().timestamp())
        if refusal is not None:
            if refusal.status == 403:
                log.warning("%s refused: %s", path, refusal.reason)
            return _error(refusal.status, refusal.reason)
        try:
            payload = parse_json(raw)
        except NotJSON as exc:
            return _error(400, str(exc))
        try:
            items = webhook.items(payload)
        except BadPayload as exc:
            return _error(400, str(exc))
        if len(items) > max_events:
            return _error(
                413, f"{len(items)} events in one request (webhooks.max_events is {max_events})"
            )
        parsed = webhook.parse(items)
        for skipped in parsed.skipped:
            log.warning("%s: event %d skipped: %s", path, skipped.index, skipped.reason)
        summary: dict[str, Any] = {"received": len(items), "stored": 0, "duplicates": 0}
        if parsed.events:
            try:
                result = await run_in_threadpool(engagement.ingest, parsed.events)
            except DBAPIError as exc:
                log.error("%s: database error, %s will retry: %s", path, webhook.esp_name, exc.orig)
                return _error(503, "database unavailable; retry later")
            summary.update(
                stored=result.stored, duplicates=result.duplicates, unmatched=result.unmatched
            )
            parsed.skipped += [Skipped(-1, why) for _, why in result.skipped]
        summary["skipped"] = len(parsed.skipped)
        if parsed.skipped:
            summary["skipped_events"] = [s.as_dict() for s in parsed.skipped[:MAX_REASONS]]
        return JSONResponse(summary)

    return Route(path, events, methods=["POST"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
