"""``GET /o/<token>.gif`` (open pixel) and ``GET /c/<token>`` (click redirect): our own tracking.

Both record an event through ``Engagement.ingest`` (provider ``drip``, the message uid from the
token) before answering; hits that arrive together share one transaction
(:class:`~dripengine.web.recorder.GroupRecorder`). The pixel answers a 1x1 transparent GIF that no cache keeps; a hit from
a privacy proxy or a prefetcher is recorded as a machine open (see
:func:`dripengine.engagement.tracking.machine_reason`). The click answers 302 to the URL signed
in the token, and only to it. A token that is not ours answers 404 and records nothing; so does a
pixel token for the click route and the other way round (the purposes differ).

The lead still gets the pixel and the redirect when the database is down: the event is lost,
logged, and the person is not punished for it.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dripengine import vocabulary as v
from dripengine.engagement.tracking import PIXEL_GIF, machine_reason, read_click, read_open
from dripengine.storage import DBAPIError
from dripengine.storage.dialect import concurrent_writers
from dripengine.tokens import BadToken
from dripengine.vocabulary import IncomingEvent
from dripengine.web.context import WebContext
from dripengine.web.pages import Brand, not_found
from dripengine.web.recorder import GroupRecorder

NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}

log = logging.getLogger("dripengine.web")


def routes(ctx: WebContext) -> list[BaseRoute]:
    from dripengine.engagement.ingest import Engagement

    engagement = Engagement(ctx.engine, ctx.settings, ctx.sla, ctx.clock)
    recorder = GroupRecorder(engagement.ingest, max_writers=concurrent_writers(ctx.engine))
    secret = ctx.settings.sender.secret_key
    brand = Brand.from_settings(ctx.settings)

    async def record(request: Request, event: IncomingEvent) -> None:
        try:
            await recorder.record(event)
        except DBAPIError as exc:
            log.error(
                "%s %s: event not recorded, database error: %s",
                event.type,
                event.message_uid,
                exc.orig,
            )

    def hit(request: Request, type_: str, uid: str, **fields: str | None) -> IncomingEvent:
        agent = request.headers.get("user-agent")
        address = request.client.host if request.client else None
        machine = machine_reason(agent, address)
        if request.method == "HEAD":  # a person's browser does not ask HEAD of a link
            machine = machine or "HEAD request"
        return IncomingEvent(
            type=type_,
            occurred_at=ctx.clock.now(),
            provider="drip",
            message_uid=uid,
            machine=machine is not None,
            detail=machine,
            raw={"user_agent": agent, "ip": address},
            **fields,
        )

    async def open_pixel(request: Request) -> Response:
        try:
            uid = read_open(secret, request.path_params["token"])
        except BadToken:
            return not_found("This image link is not valid.", brand)
        await record(request, hit(request, v.OPEN, uid))
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE)

    async def click(request: Request) -> Response:
        try:
            target = read_click(secret, request.path_params["token"])
        except BadToken:
            return not_found(
                "This link is not valid: it was changed or cut short. "
                "Open the link from the email again.",
                brand,
            )
        await record(
            request, hit(request, v.CLICK, target.message_uid, url=target.url, tag=target.tag)
        )
        return RedirectResponse(target.url, status_code=302, headers=NO_CACHE)

    return [
        Route("/o/{token}.gif", open_pixel, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
    ]
