"""What every ``/api/*`` endpoint shares: the bearer token, a JSON body within the size limit,
the campaign files read at each request, and a refusal as ``{"error": …}`` with its status."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from dripengine.campaigns import Campaign
from dripengine.campaigns.live import load_live
from dripengine.web.auth import Unauthorised, require_token
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext
from dripengine.web.jsonbody import NotJSON, parse_json

log = logging.getLogger("dripengine.web")


class ApiProblem(Exception):
    """A request refused: its status, the message for the caller, headers to send."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def authorise(request: Request, ctx: WebContext) -> None:
    try:
        require_token(request, ctx.settings)
    except Unauthorised as exc:
        raise ApiProblem(exc.status, str(exc), exc.headers) from None


async def json_body(request: Request, ctx: WebContext) -> Any:
    try:
        raw = await read_limited(request, ctx.settings.web.max_body_bytes)
    except BodyTooLarge as exc:
        raise ApiProblem(413, str(exc)) from None
    try:
        return parse_json(raw)
    except NotJSON as exc:
        raise ApiProblem(400, str(exc)) from None


def campaigns(ctx: WebContext) -> list[Campaign]:
    """The campaign files, read at each request as the CLI reads them at each run: an edit counts
    at once. A broken file pauses its campaign and is logged, the valid ones are used; with no
    valid campaign at all, 503 naming the first problem."""
    settings = ctx.settings
    live = load_live(
        settings.path("campaigns"),
        known_reasons=ctx.sla.known_reasons,
        templates_dir=settings.path("templates"),
        now=ctx.clock.now(),
    )
    for notice in live.notices:
        log.error("%s", notice)
    if live.broken and not live.campaigns:
        raise ApiProblem(
            503,
            f"the campaign files are not valid ({live.problems[0]}): `drip campaigns validate`",
        )
    return live.campaigns


def items_of(payload: Any, limit: int, noun: str) -> list[Any]:
    """A body of one object or an array of them, as a list: 422 for an empty array, 413 for more
    than ``limit`` (``noun``: what they are, for the answer)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiProblem(422, f"no {noun}: send an object or a non-empty array of them")
    if len(items) > limit:
        raise ApiProblem(413, f"{len(items)} {noun} in one request (the limit is {limit})")
    return items


def problem_response(problem: ApiProblem) -> JSONResponse:
    headers = problem.headers
    if problem.status == 401 and not headers:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse({"error": str(problem)}, status_code=problem.status, headers=headers)


def unavailable(where: str, exc: Any) -> JSONResponse:
    """Our own failure (the database): 503, so the caller retries."""
    log.error("%s: database error: %s", where, getattr(exc, "orig", exc))
    return problem_response(ApiProblem(503, "database unavailable; retry later"))


__all__ = [
    "ApiProblem",
    "authorise",
    "campaigns",
    "items_of",
    "json_body",
    "problem_response",
    "unavailable",
]
