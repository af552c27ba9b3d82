"""Unsubscribe (``/u/<token>``) and preferences (``/p/<token>``), per message.

- ``GET /u/<token>``: a page with a confirm button; it changes nothing (link scanners follow GET).
- ``POST /u/<token>`` with ``List-Unsubscribe=One-Click`` (RFC 8058: the mail client's one-click
  button, form-encoded, no cookies, no login) or the page's confirm button: the address is
  unsubscribed in the same request, through ``Engagement.ingest`` (an ``unsubscribe`` event from
  provider ``drip``: suppressed, every enrollment exited). 200 with a confirmation page, which
  offers an undo for a mistaken click while ``web.unsubscribe_undo_minutes`` last.
- ``POST /u/<token>/undo`` with ``action=undo``: gives back what that unsubscribe took away
  (:mod:`dripengine.engagement.undo`); refused with a page saying why after the grace period.
- ``GET /p/<token>``: the choices: stop this campaign only (its enrollment exits), or unsubscribe
  from everything. ``POST /p/<token>`` with ``action=leave_campaign`` does the first.

The token (the one in the email's ``List-Unsubscribe`` header) signs the message's uid. A token
that is not ours answers a 404 page and changes nothing. The pages speak in the sender's name
(``[sender]`` in drip.toml) and name the series by the campaign's ``public_name``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from dripengine import vocabulary as v
from dripengine.config import Settings
from dripengine.engagement.preferences import MessageView, find_message, leave_campaign
from dripengine.engagement.undo import (
    SNAPSHOT,
    UndoResult,
    snapshot,
    undo_status,
    undo_unsubscribe,
)
from dripengine.storage import DBAPIError
from dripengine.tokens import BadToken, unsign
from dripengine.vocabulary import IncomingEvent
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext
from dripengine.web.pages import Brand, Markup, form, link, not_found, page
from dripengine.web.series import series_label

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

    settings = ctx.settings
    engagement = Engagement(ctx.engine, settings, ctx.sla, ctx.clock)
    secret = settings.sender.secret_key
    brand = Brand.from_settings(settings)
    sender = brand.name or "the sender"
    grace = timedelta(minutes=settings.web.unsubscribe_undo_minutes)

    def show(title: str, *parts: str | Markup, status: int = 200) -> HTMLResponse:
        return page(title, *parts, status=status, brand=brand)

    def uid_of(request: Request) -> str | None:
        try:
            return unsign(secret, PURPOSE, request.path_params["token"])
        except BadToken:
            return None

    async def view(uid: str) -> tuple[MessageView | None, str]:
        """The message and how to name its series on the page."""
        message = await run_in_threadpool(find_message, ctx.engine, uid)
        if message is None:
            return None, ""
        label = await run_in_threadpool(
            series_label, settings, message.campaign_id, message.subject
        )
        return message, label

    def undo_offer(path: str, deadline: datetime) -> list[str | Markup]:
        return [
            f"Clicked by mistake? You can undo this until {_when(deadline, settings)}.",
            form(
                _undo_path(path),
                "I clicked by mistake: resubscribe",
                {"action": "undo"},
                quiet=True,
            ),
        ]

    async def undoable(uid: str) -> UndoResult | None:
        if grace <= timedelta(0):
            return None
        status = await run_in_threadpool(undo_status, ctx.engine, uid, ctx.clock.now(), grace)
        return status if status.outcome == "undone" else None

    async def unsubscribe_page(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK, brand)
        message, series = await view(uid)
        if message is None:
            return show("Nothing to unsubscribe", GONE)
        path = request.url.path
        if message.suppressed:
            parts: list[str | Markup] = [
                f"{message.masked_email} gets no more emails from {sender}."
            ]
            status = await undoable(uid)
            if status is not None and status.deadline is not None:
                parts += undo_offer(path, status.deadline)
            return show("You are unsubscribed", *parts)
        return show(
            "Unsubscribe?",
            f"This email to {message.masked_email} is part of {series} from {sender}.",
            f"Unsubscribing stops every email from {sender} to this address: {series} and "
            "anything else they would send.",
            form(path, "Unsubscribe from all", {"action": "unsubscribe"}),
            link(
                path.replace("/u/", "/p/", 1),
                f"Stop only {series} instead, and keep other emails from {sender}",
            ),
        )

    async def unsubscribe(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK, brand)
        fields = await _form(request)
        if fields is None:
            return show("Request too large", "Nothing was changed.", status=413)
        one_click = fields.get(ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click and fields.get("action") != "unsubscribe":
            return show(
                "Nothing done",
                "This request did not ask to unsubscribe (expected List-Unsubscribe=One-Click).",
                status=400,
            )
        try:
            # what the undo gives back: the enrollments active now, and when each was due
            enrollments = await run_in_threadpool(snapshot, ctx.engine, uid)
            event = IncomingEvent(
                type=v.UNSUBSCRIBE,
                occurred_at=ctx.clock.now(),
                provider="drip",
                message_uid=uid,
                detail="one-click (RFC 8058)" if one_click else "unsubscribe page",
                raw={SNAPSHOT: enrollments},
            )
            result = await run_in_threadpool(engagement.ingest, [event])
        except DBAPIError as exc:
            log.error("unsubscribe %s not recorded, database error: %s", uid, exc.orig)
            return _try_again(brand)
        if result.unmatched:
            return show("Nothing to unsubscribe", GONE)
        if one_click:
            # the mail client's button: nobody reads this answer, so it costs no more reads (the
            # person who opens the link afterwards is offered the undo on the GET page)
            return show(
                "You are unsubscribed",
                f"{sender} will send no more emails to this address. It takes effect at once.",
            )
        parts: list[str | Markup] = [
            f"{sender} will send no more emails to this address: not {await _series(view, uid)}, "
            "and nothing else. It takes effect at once."
        ]
        status = await undoable(uid)
        if status is not None and status.deadline is not None:
            parts += undo_offer(request.url.path, status.deadline)
        return show("You are unsubscribed", *parts)

    async def undo(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK, brand)
        fields = await _form(request)
        if fields is None:
            return show("Request too large", "Nothing was changed.", status=413)
        if fields.get("action") != "undo":
            return show("Nothing done", "Use the button on the page to resubscribe.", status=400)
        if grace <= timedelta(0):
            return show(
                "Cannot undo here",
                f"An unsubscribe cannot be undone from this page. You stay unsubscribed; to hear "
                f"from {sender} again, reply to one of their emails and ask.",
                status=409,
            )
        try:
            result = await run_in_threadpool(
                undo_unsubscribe, ctx.engine, uid, ctx.clock.now(), grace
            )
        except DBAPIError as exc:
            log.error("undoing the unsubscribe of %s failed, database error: %s", uid, exc.orig)
            return _try_again(brand)
        return await _undo_answer(result)

    async def _undo_answer(result: UndoResult) -> Response:
        outcome = result.outcome
        if outcome in ("undone", "already"):
            return show(
                "You are subscribed again",
                f"{sender} may email you again; the series you were in goes on where it stopped."
                if outcome == "undone"
                else "This unsubscribe was already undone.",
                "Both your unsubscribe and this undo are kept on record.",
            )
        if outcome == "expired" and result.unsubscribed_at and result.deadline:
            return show(
                "Too late to undo",
                f"The unsubscribe of {_when(result.unsubscribed_at, settings)} could be undone "
                f"until {_when(result.deadline, settings)}. You stay unsubscribed; to hear from "
                f"{sender} again, reply to one of their emails and ask.",
                status=409,
            )
        if outcome == "protected":
            return show(
                "Cannot undo here",
                "Since the unsubscribe, this address bounced or an email was reported as spam, so "
                "it stays off the list. Nothing was changed.",
                status=409,
            )
        if outcome == "erased":
            return show("Nothing to undo", GONE, status=409)
        return show(
            "Nothing to undo",
            "There is no unsubscribe from this link to undo (the address was unsubscribed before "
            "it, or never from it). Nothing was changed.",
            status=409,
        )

    async def preferences_page(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK, brand)
        message, series = await view(uid)
        if message is None:
            return show("Email preferences", GONE)
        if message.suppressed:
            return show(
                "Email preferences",
                f"{message.masked_email} is unsubscribed: it gets no more emails from {sender}.",
            )
        unsubscribe_path = request.url.path.replace("/p/", "/u/", 1)
        parts: list[str | Markup] = [f"Emails from {sender} to {message.masked_email}."]
        if message.enrollment_active:
            parts += [
                f"Stop {series} only: {sender} may still write to you about other things.",
                form(
                    request.url.path, "Stop this series", {"action": "leave_campaign"}, quiet=True
                ),
            ]
        else:
            parts.append(f"{series[:1].upper()}{series[1:]} has already ended for you.")
        parts += [
            f"Or stop every email from {sender}.",
            form(unsubscribe_path, "Unsubscribe from all", {"action": "unsubscribe"}),
        ]
        return show("Email preferences", *parts)

    async def preferences(request: Request) -> Response:
        uid = uid_of(request)
        if uid is None:
            return not_found(BAD_LINK, brand)
        fields = await _form(request)
        if fields is None:
            return show("Request too large", "Nothing was changed.", status=413)
        if fields.get("action") != "leave_campaign":
            return show("Nothing done", "Choose one of the buttons on the page.", status=400)
        try:
            left = await run_in_threadpool(leave_campaign, ctx.engine, uid, ctx.clock.now())
        except DBAPIError as exc:
            log.error("leaving the campaign of %s failed, database error: %s", uid, exc.orig)
            return _try_again(brand)
        unsubscribe_path = request.url.path.replace("/p/", "/u/", 1)
        series = await _series(view, uid)
        return show(
            "Series stopped" if left else "Series already ended",
            f"You will get no more emails from {series}; {sender} may still write about other "
            "things.",
            form(unsubscribe_path, "Unsubscribe from all", {"action": "unsubscribe"}, quiet=True),
        )

    return [
        Route("/u/{token}", unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        Route("/u/{token}/undo", undo, methods=["POST"]),
        Route("/p/{token}", preferences_page, methods=["GET"]),
        Route("/p/{token}", preferences, methods=["POST"]),
    ]


async def _series(
    view: Callable[[str], Awaitable[tuple[MessageView | None, str]]], uid: str
) -> str:
    _, label = await view(uid)
    return label or "this series of emails"


def _undo_path(path: str) -> str:
    return path.rstrip("/") + "/undo"


def _when(at: datetime, settings: Settings) -> str:
    """``18:30 on 26 Nov 2026 (Europe/Berlin)``, in the zone drip.toml shows times in."""
    zone = settings.general.timezone
    local = at.astimezone(ZoneInfo(zone))
    return f"{local:%H:%M} on {local.day} {local:%b %Y} ({zone})"


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


def _try_again(brand: Brand) -> HTMLResponse:
    return page(
        "Please try again",
        "We could not record this just now. Nothing was changed; please try again in a minute.",
        status=503,
        brand=brand,
    )
