"""``POST /api/touches``: the CRM reports a rep's call, email or meeting with a lead. Same bearer
token, body limits and ``{"error": …}`` refusals as the rest of ``/api``
(:mod:`dripengine.web.problems`); the rules are :mod:`dripengine.leads.touches`'s.

Body: one object ``{"email", "kind": "call|email|meeting", "at"?, "actor"? (or "rep"), "note"?}``
or an array of them (at most ``webhooks.max_events``). ``at`` is ISO 8601 with its offset; without
it, now. The answer says what became of each touch::

    {"stored": 1, "duplicates": 0, "refused": 0,
     "touches": [{"index": 0, "email": …, "kind": "call", "at": …, "outcome": "stored", …}]}

Statuses: 201 when at least one touch was stored; 200 when none was new (duplicates only); a
refusal of a single touch is 404 for an address no lead has (with the nearest known ones) and 422
otherwise; an array whose touches were all refused is 422 (both with ``"error"``, the first
reason); an array with some stored and some refused is 201, each refusal in its entry and
``"error"`` naming how many. 400 for a body that is neither an object nor an array of objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.leads.touches import TouchReport, parse_all, record_touches
from dripengine.storage import DBAPIError
from dripengine.web.context import WebContext
from dripengine.web.problems import (
    ApiProblem,
    authorise,
    items_of,
    json_body,
    problem_response,
    unavailable,
)

SHAPE = 'expected a JSON object {"email", "kind", "at"?, "actor"?, "note"?} or an array of them'


def touch_items(payload: Any, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """The touches of a body, by index; :class:`ApiProblem` for a body of the wrong shape."""
    items = items_of(payload, limit, "touches")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"[{index}]: " if isinstance(payload, list) else ""
            raise ApiProblem(400, f"{where}{SHAPE}")
    return list(enumerate(items))


def answer(report: TouchReport, single: bool) -> JSONResponse:
    body: dict[str, Any] = {
        **report.counts(),
        "touches": [{"index": r.where, **r.as_dict()} for r in report.results],
    }
    refused = report.refused
    stored = report.count("stored")
    if not refused:
        return JSONResponse(body, status_code=201 if stored else 200)
    first = refused[0]
    if single:
        body["error"] = first.message
        return JSONResponse(body, status_code=404 if first.message.startswith("no lead ") else 422)
    if stored:
        body["error"] = f"{len(refused)} of {len(report.results)} touches refused (see touches)"
        return JSONResponse(body, status_code=201)
    if report.count("duplicate"):
        body["error"] = f"{len(refused)} of {len(report.results)} touches refused (see touches)"
        return JSONResponse(body, status_code=422)
    body["error"] = f"every touch refused; [{first.where}]: {first.message}"
    return JSONResponse(body, status_code=422)


def routes(ctx: WebContext) -> list[BaseRoute]:
    limit = ctx.settings.webhooks.max_events

    def record_now(items: list[tuple[int, dict[str, Any]]], now: datetime) -> TouchReport:
        return record_touches(
            ctx.engine, parse_all(items, now), now, source="api", place="touch [{}]".format
        )

    async def api_touches(request: Request) -> JSONResponse:
        try:
            authorise(request, ctx)
            payload = await json_body(request, ctx)
            items = touch_items(payload, limit)
            report = await run_in_threadpool(record_now, items, ctx.clock.now())
        except ApiProblem as problem:
            return problem_response(problem)
        except DBAPIError as exc:
            return unavailable("/api/touches", exc)
        return answer(report, single=not isinstance(payload, list))

    return [Route("/api/touches", api_touches, methods=["POST"])]


__all__ = ["answer", "routes", "touch_items"]
