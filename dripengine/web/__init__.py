"""`drip serve`: the ASGI app (webhooks, tracking, unsubscribe, API)."""

from dripengine.web.app import build_app, create_app

__all__ = ["build_app", "create_app"]
