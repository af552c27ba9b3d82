"""Fakes that ship with the package, for tests and benchmarks (ours and yours), and the demo.

:class:`SendGridStandIn` is a real HTTP server on loopback (a small Starlette app under uvicorn)
that answers ``POST /v3/mail/send`` the way SendGrid documents it, with fault injection and a
latency model; what it answers is decided by :mod:`dripengine.testing.sendgrid_contract` (pure).
:func:`esp_posts` is the ESP `drip demo` plays: SendGrid's webhook posts
(:mod:`dripengine.testing.sendgrid_posts`).
"""

from __future__ import annotations

from dripengine.testing.sendgrid_posts import SendGridPosts
from dripengine.testing.sendgrid_standin import Accepted, SendGridStandIn

__all__ = ["Accepted", "SendGridPosts", "SendGridStandIn", "esp_posts"]


def esp_posts() -> SendGridPosts:
    """The ESP the demo plays (a fresh key pair and inbound secret): SendGrid."""
    return SendGridPosts()
