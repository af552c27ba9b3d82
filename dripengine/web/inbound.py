"""``POST`` to each ESP's inbound route: the replies to our mail, one way for every ESP listed.

The ESP's part is its :class:`~dripengine.providers.webhook.InboundWebhook` (its path, how its
form fields read as a reply); the rest is here. An inbound post has no signature. With
``webhooks.inbound_secret`` set, a post is taken only at ``<path>/<secret>`` or with the secret as
the HTTP basic-auth password (``https://drip:<secret>@host<path>``); anything else gets 403.
Without the setting anyone who knows the URL can post a reply, and `drip serve` says so when it
starts.

The reply is matched to our Message through In-Reply-To / References (only uids that exist are
taken), else to a lead by its From address; one that matches neither is answered 200 and counted
(``matched: false``): an ESP retries 5xx (for days), so 5xx is only for our own fault.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.providers import inbound_webhooks
from dripengine.providers.webhook import BadPayload, InboundWebhook
from dripengine.storage import DBAPIError
from dripengine.storage.messages import known_uid
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext

SECRET_SETTING = "webhooks.inbound_secret (DRIP_WEBHOOKS_INBOUND_SECRET)"

log = logging.getLogger("dripengine.web")


def authorised(request: Request, secret: str | None) -> bool:
    """No secret configured, or the secret given in the path or as the basic-auth password."""
    if secret is None:
        return True
    given = request.path_params.get("secret")
    if given is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                given = None
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


def routes(ctx: WebContext) -> list[BaseRoute]:
    return [route for inbound in inbound_webhooks(ctx.settings) for route in _routes(ctx, inbound)]


def _routes(ctx: WebContext, webhook: InboundWebhook) -> list[BaseRoute]:
    from dripengine.engagement.ingest import Engagement

    path = webhook.path
    secret = ctx.settings.webhooks.inbound_secret
    if secret is None:
        log.warning("%s takes replies from anyone who knows the URL: set %s", path, SECRET_SETTING)
    engagement = Engagement(ctx.engine, ctx.settings, ctx.sla, ctx.clock)
    limit = ctx.settings.web.max_body_bytes

    async def inbound(request: Request) -> JSONResponse:
        if not authorised(request, secret):
            return _error(403, f"not authorised: the path or password must be {SECRET_SETTING}")
        try:
            await read_limited(request, limit)
        except BodyTooLarge as exc:
            return _error(413, str(exc))
        try:
            form = await request.form(max_part_size=limit)
        except Exception as exc:  # python-multipart's errors: not a form an ESP would post
            return _error(400, f"not a multipart/form-data post: {exc}")
        fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        await form.close()
        try:
            email = await run_in_threadpool(webhook.read, fields)  # up to 5 MB of MIME
        except BadPayload as exc:
            return _error(400, str(exc))
        try:
            uid = await run_in_threadpool(known_uid, ctx.engine, email.candidates)
            event = email.event(ctx.clock.now(), uid)
            result = await run_in_threadpool(engagement.ingest, [event])
        except DBAPIError as exc:
            log.error("%s: database error, %s will retry: %s", path, webhook.esp_name, exc.orig)
            return _error(503, "database unavailable; retry later")
        matched = uid is not None or result.unmatched == 0
        if not matched:
            log.info("%s: a reply from %s matched no message and no lead", path, email.sender)
        summary: dict[str, Any] = {
            "type": event.type,
            "matched": matched,
            "message": uid is not None,
            "stored": result.stored,
            "duplicates": result.duplicates,
        }
        return JSONResponse(summary)

    return [
        Route(path, inbound, methods=["POST"]),
        Route(path + "/{secret}", inbound, methods=["POST"]),
    ]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
