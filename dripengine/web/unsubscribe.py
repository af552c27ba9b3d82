"""Unsubscribe (``/u/<token>``) and preferences (``/p/<token>``), per message.

- ``GET /u/<token>``: a page with a confirm button; it changes nothing (link scanners follow GET).
- ``POST /u/<token>`` with ``List-Unsubscribe=One-Click`` (RFC 8058: the mail client's one-click
  button, form-encoded, no cookies, no login) or the page's confirm button: the address is
  unsubscribed in the same request, through ``Engagement.ingest`` (an ``unsubscribe`` event from
  provider ``drip``: suppressed, every enrollment exited). 200 with a confirmation page.
- ``GET /p/<token>``: the choices: stop this campaign only (its enrollment exits), or unsubscribe
  from everything. ``POST /p/<token>`` with ``action=leave_campaign`` does the first.

The token (the one in the email's ``List-Unsubscribe`` header) signs the message's uid. A token
that is not ours answers a 404 page and changes nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from dripengine.engagement import vocabulary as v
from dripengine.engagement.preferences import MessageView, find_message, leave_campaign
from dripengine.engagement.vocabulary import IncomingEvent
from dripengine.tokens import BadToken, unsign
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext
from dripengine.web.pages import form, link, not_found, page

PURPOSE = "unsubscribe"
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's body
MAX_FORM_BYTES = 8_192
BAD_LINK = (
    "This unsubscribe link is not valid: it was changed or cut short. "
    "Use the link at the bottom of the email again, or reply to the email and ask us."
)
GONE = (
    "We no longer hold this address (it was erased), and an erased address is never emailed again."
)

log = logging.getLogger("dripengine.web")


def routes(ctx: WebContext) -> list[BaseRoute]:
    from dripengine.engagement.ingest import Engagement

    engagement = Engagement(ctx.engine, ctx.settings, ctx.sla, ctx.clock)
    secret = ctx.settings.sender.secret_key

    def uid_of(request: Request) -> str | None:
        try:
            return unsign(secret, PURPOSE, request.path_params["token"])
        except BadToken:
            return None

    async def view(uid: str) -> MessageView | None:
        return await run_in_threadpool(find_message, ctx.engine, uid)

    async def unsubscribe_page(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK)
        message = await view(uid)
        if message is None:
            return page("Nothing to unsubscribe", GONE)
        if message.suppressed:
            return page(
                "You are unsubscribed",
                f"{message.masked_email} gets no more emails from us.",
            )
        path = request.url.path
        return page(
            "Unsubscribe?",
            f"Stop all emails from us to {message.masked_email}.",
            form(path, "Unsubscribe", {"action": "unsubscribe"}),
            link(path.replace("/u/", "/p/", 1), "Other choices"),
        )

    async def unsubscribe(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK)
        fields = await _form(request)
        if fields is None:
            return page("Request too large", "Nothing was changed.", status=413)
        one_click = fields.get(ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click and fields.get("action") != "unsubscribe":
            return page(
                "Nothing done",
                "This request did not ask to unsubscribe (expected List-Unsubscribe=One-Click).",
                status=400,
            )
        event = IncomingEvent(
            type=v.UNSUBSCRIBE,
            occurred_at=ctx.clock.now(),
            provider="drip",
            message_uid=uid,
            detail="one-click (RFC 8058)" if one_click else "unsubscribe page",
        )
        try:
            result = await run_in_threadpool(engagement.ingest, [event])
        except DBAPIError as exc:
            log.error("unsubscribe %s not recorded, database error: %s", uid, exc.orig)
            return _try_again()
        if result.unmatched:
            return page("Nothing to unsubscribe", GONE)
        return page(
            "You are unsubscribed",
            "You will get no more emails from us. It takes effect at once.",
        )

    async def preferences_page(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK)
        message = await view(uid)
        if message is None:
            return page("Email preferences", GONE)
        if message.suppressed:
            return page(
                "Email preferences",
                f"{message.masked_email} is unsubscribed: it gets no more emails from us.",
            )
        unsubscribe_path = request.url.path.replace("/p/", "/u/", 1)
        parts = [f"Emails to {message.masked_email}."]
        if message.enrollment_active:
            parts += [
                "Stop this series of emails only; we may still write about other things.",
                form(
                    request.url.path, "Stop this series", {"action": "leave_campaign"}, quiet=True
                ),
            ]
        else:
            parts.append("This series of emails has already ended for you.")
        parts += [
            "Or stop every email from us.",
            form(unsubscribe_path, "Unsubscribe from all", {"action": "unsubscribe"}),
        ]
        return page("Email preferences", *parts)

    async def preferences(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK)
        fields = await _form(request)
        if fields is None:
            return page("Request too large", "Nothing was changed.", status=413)
        if fields.get("action") != "leave_campaign":
            return page("Nothing done", "Choose one of the buttons on the page.", status=400)
        try:
            left = await run_in_threadpool(leave_campaign, ctx.engine, uid, ctx.clock.now())
        except DBAPIError as exc:
            log.error("leaving the campaign of %s failed, database error: %s", uid, exc.orig)
            return _try_again()
        unsubscribe_path = request.url.path.replace("/p/", "/u/", 1)
        return page(
            "Series stopped" if left else "Series already ended",
            "You will get no more emails from this series.",
            form(unsubscribe_path, "Unsubscribe from all", {"action": "unsubscribe"}, quiet=True),
        )

    return [
        Route("/u/{token}", unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        Route("/p/{token}", preferences_page, methods=["GET"]),
        Route("/p/{token}", preferences, methods=["POST"]),
    ]


async def _form(request: Request) -> dict[str, str] | None:
    """The form-encoded body as a dict (first value of each name); None when it is too large.

    Read by hand, not with ``request.form()``: a one-click POST may come with any content type.
    """
    try:
        raw = await read_limited(request, MAX_FORM_BYTES)
    except BodyTooLarge:
        return None
    text = raw.decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(text).items()}


def _try_again() -> HTMLResponse:
    return page(
        "Please try again",
        "We could not record this just now. Nothing was changed; please try again in a minute.",
        status=503,
    )
