"""``GET /healthz``: 200 when this process can reach the database, else 503 with the reason.

The check is ``SELECT 1`` on a connection of the process's own pool (what a request would use),
in a worker thread, given :data:`TIMEOUT_SECONDS`. Probes arriving while a check runs wait for that
check instead of starting another, so a hung database costs one thread, not one per probe. The
answer says what failed, not the driver's words (they name the database host); those go to the
log, once when the database goes away and once when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dripengine.storage import DBAPIError, Engine
from dripengine.storage.engine import database_error_reason, ping
from dripengine.web.context import WebContext

TIMEOUT_SECONDS = 3.0
HEADERS = {"Cache-Control": "no-store"}

log = logging.getLogger("dripengine.web")


class DatabaseCheck:
    """``SELECT 1`` with a time limit, one at a time; logs when the answer changes."""

    def __init__(self, engine: Engine, timeout: float = TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self.timeout = timeout
        self._running: asyncio.Task[None] | None = None
        self._down = False

    async def problem(self) -> str | None:
        """None when the database answered; else what went wrong, for the caller."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_in_threadpool(ping, self.engine))
            # a check that ends after its probes gave up: its error is read here, not left unread
            self._running.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except TimeoutError:
            return self._failed(f"no answer within {self.timeout:g} s", None)
        except DBAPIError as exc:
            return self._failed("unreachable", exc)
        except Exception as exc:  # the pool's own timeout, …: not healthy either
            return self._failed("check failed", exc)
        if self._down:
            log.info("/healthz: the database answers again")
            self._down = False
        return None

    def _failed(self, what: str, exc: BaseException | None) -> str:
        if not self._down:
            detail = (database_error_reason(exc) or repr(exc)) if exc is not None else what
            log.warning("/healthz: the database is %s: %s", what, detail)
            self._down = True
        return f"database {what}"


def routes(ctx: WebContext) -> list[BaseRoute]:
    check = DatabaseCheck(ctx.engine)

    async def healthz(request: Request) -> JSONResponse:
        problem = await check.problem()
        body: dict[str, Any] = {"status": "ok", "database": "ok"}
        if problem is not None:
            body = {"status": "unavailable", "database": "failed", "reason": problem}
        return JSONResponse(body, 503 if problem else 200, headers=HEADERS)

    return [Route("/healthz", healthz, methods=["GET"])]


__all__ = ["TIMEOUT_SECONDS", "DatabaseCheck", "routes"]
