"""The bearer token of ``/api/*``: ``Authorization: Bearer <web.api_token>``, compared in constant
time. No token configured: the API is closed (503 naming the setting), never open."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from dripengine.config import Settings

TOKEN_SETTING = "set DRIP_API_TOKEN (or api_token in [web] of drip.toml) to use the API"


class Unauthorised(Exception):
    """The request may not use the API; ``status`` is 401 (no or a wrong token) or 503 (no token
    configured)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else None


def require_token(request: Request, settings: Settings) -> None:
    """Return when the request carries the configured bearer token; :class:`Unauthorised` if not."""
    token = settings.web.api_token or ""
    if not token:
        raise Unauthorised(503, f"the API is off: {TOKEN_SETTING}")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # digests of equal length: the comparison takes the same time whatever was sent
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        _digest(given.strip()), _digest(token)
    ):
        raise Unauthorised(401, "missing or wrong bearer token (Authorization: Bearer …)")


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


__all__ = ["TOKEN_SETTING", "Unauthorised", "require_token"]
