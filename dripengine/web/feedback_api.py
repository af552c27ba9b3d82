"""``POST /api/feedback``: sales' word on a handed-back lead, from the CRM. Same rules as
``drip feedback`` (:func:`dripengine.funnel.feedback.record`), same bearer token as the rest of ``/api``.

Body: ``{"email", "outcome": "accepted|rejected|won|lost", "reason"?, "note"?, "actor"?,
"from"?}``. Answers: 201 when recorded, 200 for a repeat that changed nothing (``"noop": true``),
404 for an unknown lead, 409 for feedback that contradicts what was said before or a lead never
handed back, 422 for a bad outcome or reason (the answer lists the accepted ones), 400 for a body
that is not a JSON object, 401/503 for the token (see :mod:`dripengine.web.auth`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.exceptions import (
    FeedbackConflict,
    FeedbackError,
    FunnelError,
    LeadNotFound,
)
from dripengine.funnel.feedback import FeedbackResult, record
from dripengine.funnel.feedback_plan import FeedbackRequest
from dripengine.funnel.recycle_request import RecycleContext
from dripengine.storage import DBAPIError
from dripengine.web.context import WebContext
from dripengine.web.problems import (
    ApiProblem,
    authorise,
    campaigns,
    json_body,
    problem_response,
    unavailable,
)

DEFAULT_ACTOR = "api"


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
        raise ApiProblem(400, "expected a JSON object: {email, outcome, reason?, note?, actor?}")
    try:
        body = FeedbackBody.model_validate(payload)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ApiProblem(422, "; ".join(problems)) from None
    try:
        return FeedbackRequest(
            email=body.email,
            outcome=body.outcome,
            reason=body.reason or None,
            note=body.note or None,
            actor=body.actor or DEFAULT_ACTOR,
            from_stage=body.from_stage or None,
        )
    except FeedbackError as exc:  # NUL, control characters: what the database would refuse
        raise ApiProblem(422, exc.message) from None


def routes(ctx: WebContext) -> list[BaseRoute]:
    settings = ctx.settings

    def record_now(request: FeedbackRequest) -> FeedbackResult:
        recycling = request.outcome.strip().lower() in ("rejected", "lost")
        recycle_ctx = RecycleContext(
            campaigns=campaigns(ctx) if recycling else [],
            sla=ctx.sla,
            now=ctx.clock.now(),
            reset_score=settings.scoring.reset_on_recycle,
        )
        return record(ctx.engine, request, recycle_ctx)

    async def api_feedback(request: Request) -> JSONResponse:
        try:
            authorise(request, ctx)
            payload = await json_body(request, ctx)
            feedback = feedback_request(payload)
            try:
                result = await run_in_threadpool(record_now, feedback)
            except LeadNotFound as exc:
                raise ApiProblem(404, exc.message) from None
            except (FeedbackConflict, FunnelError) as exc:  # where the lead stands
                raise ApiProblem(409, exc.message) from None
            except FeedbackError as exc:  # the request's words: outcome, reason
                raise ApiProblem(422, exc.message) from None
        except ApiProblem as problem:
            return problem_response(problem)
        except DBAPIError as exc:
            return unavailable("/api/feedback", exc)
        return JSONResponse(result.as_dict(), status_code=200 if result.noop else 201)

    return [Route("/api/feedback", api_feedback, methods=["POST"])]


__all__ = ["FeedbackBody", "feedback_request", "routes"]
