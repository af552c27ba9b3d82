"""``POST /api/feedback``: sales' word on a handed-back lead, from the CRM. Same rules as
``drip feedback`` (:func:`dripengine.feedback.record`), same bearer token as the rest of ``/api``.

Body: ``{"email", "outcome": "accepted|rejected|won|lost", "reason"?, "note"?, "actor"?,
"from"?}``. Answers: 201 when recorded, 200 for a repeat that changed nothing (``"noop": true``),
404 for an unknown lead, 409 for feedback that contradicts what was said before or a lead never
handed back, 422 for a bad outcome or reason (the answer lists the accepted ones), 400 for a body
that is not a JSON object, 401/503 for the token (see :mod:`dripengine.web.auth`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.campaigns import Campaign, load_campaigns
from dripengine.exceptions import (
    CampaignFileErrors,
    FeedbackConflict,
    FeedbackError,
    FunnelError,
    LeadNotFound,
)
from dripengine.feedback import FeedbackRequest, FeedbackResult, record
from dripengine.recycle_plan import RecycleContext
from dripengine.web.auth import Unauthorised, require_token
from dripengine.web.body import BodyTooLarge, read_limited
from dripengine.web.context import WebContext

DEFAULT_ACTOR = "api"

log = logging.getLogger("dripengine.web")


class _Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    email: str = Field(min_length=1, max_length=320)
    outcome: str = Field(min_length=1, max_length=16)
    reason: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=10_000)
    actor: str | None = Field(default=None, max_length=200)
    from_stage: str | None = Field(default=None, alias="from", max_length=32)


def feedback_request(payload: Any) -> FeedbackRequest:
    if not isinstance(payload, dict):
        raise _Problem(400, "expected a JSON object: {email, outcome, reason?, note?, actor?}")
    try:
        body = FeedbackBody.model_validate(payload)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise _Problem(422, "; ".join(problems)) from None
    return FeedbackRequest(
        email=body.email,
        outcome=body.outcome,
        reason=body.reason or None,
        note=body.note or None,
        actor=body.actor or DEFAULT_ACTOR,
        from_stage=body.from_stage or None,
    )


def routes(ctx: WebContext) -> list[BaseRoute]:
    settings = ctx.settings

    def campaigns() -> list[Campaign]:
        # read at each request, as the CLI reads them at each run: an edit counts at once
        try:
            return load_campaigns(
                settings.path("campaigns"),
                known_reasons=list(ctx.sla.recycle_reasons),
                templates_dir=settings.path("templates"),
            )
        except CampaignFileErrors as exc:
            log.error("campaign files not valid: %s", exc.errors[0])
            raise _Problem(
                503,
                f"the campaign files are not valid ({exc.errors[0]}): `drip campaigns validate`",
            ) from None

    def record_now(request: FeedbackRequest) -> FeedbackResult:
        recycling = request.outcome.strip().lower() in ("rejected", "lost")
        recycle_ctx = RecycleContext(
            campaigns=campaigns() if recycling else [],
            sla=ctx.sla,
            now=ctx.clock.now(),
            reset_score=settings.scoring.reset_on_recycle,
        )
        return record(ctx.engine, request, recycle_ctx)

    async def api_feedback(request: Request) -> JSONResponse:
        try:
            try:
                require_token(request, settings)
            except Unauthorised as exc:
                raise _Problem(exc.status, str(exc), exc.headers) from None
            try:
                raw = await read_limited(request, settings.web.max_body_bytes)
            except BodyTooLarge as exc:
                raise _Problem(413, str(exc)) from None
            try:
                payload = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _Problem(400, f"the body is not JSON: {exc}") from None
            feedback = feedback_request(payload)
            try:
                result = await run_in_threadpool(record_now, feedback)
            except LeadNotFound as exc:
                raise _Problem(404, exc.message) from None
            except (FeedbackConflict, FunnelError) as exc:  # where the lead stands
                raise _Problem(409, exc.message) from None
            except FeedbackError as exc:  # the request's words: outcome, reason
                raise _Problem(422, exc.message) from None
        except _Problem as problem:
            return JSONResponse(
                {"error": str(problem)}, status_code=problem.status, headers=problem.headers
            )
        except DBAPIError as exc:
            log.error("/api/feedback: database error: %s", exc.orig)
            return JSONResponse({"error": "database unavailable; retry later"}, status_code=503)
        return JSONResponse(result.as_dict(), status_code=200 if result.noop else 201)

    return [Route("/api/feedback", api_feedback, methods=["POST"])]


__all__ = ["FeedbackBody", "feedback_request", "routes"]
