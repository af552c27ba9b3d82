"""The API of `drip serve`: ``POST /api/recycle`` and ``POST /api/events``, behind a bearer token.

- Every request needs ``Authorization: Bearer <web.api_token>`` (compared in constant time);
  401 without it or with another one. No token configured: 503, and the answer says to set
  ``DRIP_API_TOKEN``: an API nobody secured is closed, not open.
- ``/api/recycle``: a CRM pushes a lost deal. The same rules as ``drip recycle`` (the same
  :func:`dripengine.funnel.recycle.recycle` and request shape as a CSV row: ``email``, ``from`` (or
  ``from_stage``), ``reason``, ``note``, ``actor``, contact fields, any other scalar becomes an
  attribute). 201 when the lead is enrolled, 200 for the other outcomes (restarted, resumed,
  kept, denied, unmatched), 422 when the recycle is refused (unknown reason: the answer lists
  the accepted ones), 400 for a body that is not a JSON object.
- ``/api/events``: custom engagement, one object or an array of them: ``email``, ``type``
  (site_visit, form_fill, demo_request), ``occurred_at`` (ISO 8601 with a zone; default now),
  ``url``, ``id`` (your id: a second post with the same id is a duplicate). Through
  ``Engagement.ingest`` (provider ``api``). 422 names the field that is wrong.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.engagement.admit import NotStorable, admit
from dripengine.exceptions import FunnelError
from dripengine.funnel.recycle import recycle
from dripengine.funnel.recycle_csv import FROM_ALIASES
from dripengine.funnel.recycle_request import LEAD_FIELDS, RecycleContext, RecycleRequest
from dripengine.storage import DBAPIError
from dripengine.vocabulary import CUSTOM_TYPES, IncomingEvent
from dripengine.web.auth import TOKEN_SETTING
from dripengine.web.context import WebContext
from dripengine.web.problems import (
    ApiProblem,
    authorise,
    campaigns,
    items_of,
    json_body,
    problem_response,
    unavailable,
)

DEFAULT_ACTOR = "api"

log = logging.getLogger("dripengine.web")

EventType = Literal["site_visit", "form_fill", "demo_request"]
assert set(EventType.__args__) == CUSTOM_TYPES  # type: ignore[attr-defined]


class RecycleBody(BaseModel):
    """A lost deal; keys beyond these are contact fields or attributes, as columns of a CSV."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    email: str = Field(min_length=1, max_length=320)
    reason: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=10_000)
    actor: str | None = Field(default=None, max_length=200)
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class EventBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=1, max_length=320)
    type: EventType
    occurred_at: AwareDatetime | None = None
    url: str | None = Field(default=None, max_length=2_000)
    id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return normalise_email(value)
        except InvalidEmail as exc:
            raise ValueError(f"not an email address: {exc}") from None


def recycle_request(body: dict[str, Any]) -> RecycleRequest:
    """The request a CSV row with the same columns would make; :class:`ApiProblem` when invalid."""
    try:
        parsed = RecycleBody.model_validate(body)
    except ValidationError as exc:
        raise ApiProblem(422, _explain(exc)) from None
    extra = dict(parsed.model_extra or {})
    from_stage = None
    for alias in FROM_ALIASES:
        value = extra.pop(alias, None)
        if value is not None and from_stage is None:
            if not isinstance(value, str):
                raise ApiProblem(422, f"{alias}: expected a stage name (a string)")
            from_stage = value.strip().lower() or None
    lead_fields: dict[str, Any] = {}
    attributes: dict[str, Any] = dict(parsed.attributes)
    for key, value in extra.items():
        if value is None or value == "":
            continue
        if key in LEAD_FIELDS:
            if not isinstance(value, str):
                raise ApiProblem(422, f"{key}: expected a string")
            lead_fields[key] = value.strip()
        elif isinstance(value, str | int | float | bool):
            attributes[key] = value
        else:
            raise ApiProblem(422, f"{key}: expected a string, number or boolean (a lead attribute)")
    return RecycleRequest(
        email=parsed.email,
        reason=parsed.reason,
        from_stage=from_stage,
        note=parsed.note or None,
        actor=parsed.actor or DEFAULT_ACTOR,
        lead_fields=lead_fields,
        attributes=attributes,
    )


def incoming_events(payload: Any, now: datetime, limit: int) -> list[IncomingEvent]:
    """The events of a body (an object or an array of them); :class:`ApiProblem` when invalid."""
    items = items_of(payload, limit, "events")
    events = []
    for index, item in enumerate(items):
        try:
            body = EventBody.model_validate(item)
        except ValidationError as exc:
            prefix = f"[{index}]." if isinstance(payload, list) else ""
            raise ApiProblem(422, _explain(exc, prefix)) from None
        event = IncomingEvent(
            type=body.type,
            occurred_at=body.occurred_at or now,
            provider="api",
            email=body.email,
            provider_event_id=body.id,
            url=body.url,
            raw=item,
        )
        try:
            events.append(admit(event))  # what the database takes, named (a NUL in the id)
        except NotStorable as exc:
            prefix = f"[{index}]." if isinstance(payload, list) else ""
            raise ApiProblem(422, prefix + str(exc).replace("provider_event_id", "id")) from None
    return events


def _explain(exc: ValidationError, prefix: str = "") -> str:
    """``field: message`` for each problem, the field named as it is in the JSON."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{prefix}{where}: {error['msg']}")
    return "; ".join(problems)


def routes(ctx: WebContext) -> list[BaseRoute]:
    from dripengine.engagement.ingest import Engagement

    settings = ctx.settings
    engagement = Engagement(ctx.engine, settings, ctx.sla, ctx.clock)
    if not settings.web.api_token:
        log.warning("/api/* answers 503: %s", TOKEN_SETTING)

    def recycle_now(request: RecycleRequest) -> dict[str, Any]:
        recycle_ctx = RecycleContext(
            campaigns=campaigns(ctx),
            sla=ctx.sla,
            now=ctx.clock.now(),
            reset_score=settings.scoring.reset_on_recycle,
        )
        outcome = recycle(ctx.engine, request, recycle_ctx)
        return {**outcome.as_dict(), "message": outcome.describe()}

    async def api_recycle(request: Request) -> JSONResponse:
        try:
            authorise(request, ctx)
            payload = await json_body(request, ctx)
            if not isinstance(payload, dict):
                raise ApiProblem(400, "expected a JSON object: {email, from, reason, …}")
            try:
                recycle_request_ = recycle_request(payload)
                answer = await run_in_threadpool(recycle_now, recycle_request_)
            except FunnelError as exc:
                raise ApiProblem(422, exc.message.replace("--from", '"from"')) from None
        except ApiProblem as problem:
            return problem_response(problem)
        except DBAPIError as exc:
            return unavailable("/api/recycle", exc)
        return JSONResponse(answer, status_code=201 if answer["outcome"] == "enrolled" else 200)

    async def api_events(request: Request) -> JSONResponse:
        try:
            authorise(request, ctx)
            payload = await json_body(request, ctx)
            events = incoming_events(payload, ctx.clock.now(), settings.webhooks.max_events)
            result = await run_in_threadpool(engagement.ingest, events)
        except ApiProblem as problem:
            return problem_response(problem)
        except DBAPIError as exc:
            return unavailable("/api/events", exc)
        return JSONResponse(result.as_dict())

    return [
        Route("/api/recycle", api_recycle, methods=["POST"]),
        Route("/api/events", api_events, methods=["POST"]),
    ]
