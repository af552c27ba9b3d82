"""``GET /report``: the `drip report` page, served live by `drip serve`, behind the API token.

Two ways to present the token, both in the ``Authorization`` header and compared in constant
time: ``Bearer <token>`` (scripts, a reverse proxy that adds it) or HTTP Basic with the token as
the password and any user name (a browser asks for it by itself on the 401). Never in the URL: a
query-string token lands in browser history, proxy logs and shared links. No token configured:
503, as for ``/api/*``.

``?since=90d`` and ``?campaign=ID`` as in `drip report`. The page is rendered in a worker thread
(the queries take seconds on millions of emails) and is never cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from dripengine.config import Settings
from dripengine.reports import html as report
from dripengine.reports import stats
from dripengine.reports.since import parse_since
from dripengine.web.auth import TOKEN_SETTING, Unauthorised, require_token
from dripengine.web.context import WebContext

REALM = 'Basic realm="dripengine report", charset="UTF-8"'
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _basic_password(request: Request) -> str | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def authorise(request: Request, settings: Settings) -> None:
    """Return when the request carries the API token (bearer or basic); Unauthorised if not."""
    password = _basic_password(request)
    if password is None:
        require_token(request, settings)
        return
    token = settings.web.api_token or ""
    if not token:
        raise Unauthorised(503, f"the report is off: {TOKEN_SETTING}")
    given, wanted = (hashlib.sha256(v.encode()).digest() for v in (password, token))
    if not hmac.compare_digest(given, wanted):
        raise Unauthorised(401, "wrong token (the password is the API token)")


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def report_page(request: Request) -> Response:
        try:
            authorise(request, ctx.settings)
        except Unauthorised as exc:
            headers = {"WWW-Authenticate": REALM} if exc.status == 401 else {}
            return PlainTextResponse(str(exc) + "\n", exc.status, headers={**HEADERS, **headers})
        now = ctx.clock.now()
        since_text = request.query_params.get("since") or None
        campaign = request.query_params.get("campaign") or None
        try:
            since = parse_since(since_text, now) if since_text else None
        except ValueError as exc:
            return PlainTextResponse(f"since: {exc}\n", 400, headers=HEADERS)
        window = stats.Window(now=now, since=since)
        page = await run_in_threadpool(
            report.build, ctx.engine, window, campaign, since_text=since_text, sla=ctx.sla
        )
        return HTMLResponse(page, headers=HEADERS)

    return [Route("/report", report_page, methods=["GET"])]
