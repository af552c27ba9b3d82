"""Fakes that ship with the package, for tests and benchmarks (ours and yours).

:class:`SendGridStandIn` is a real HTTP server on loopback (a small Starlette app under uvicorn)
that answers ``POST /v3/mail/send`` the way SendGrid documents it, with fault injection and a
latency model; what it answers is decided by :mod:`dripengine.testing.sendgrid_contract` (pure).
"""

from __future__ import annotations

from dripengine.testing.sendgrid_standin import Accepted, SendGridStandIn

__all__ = ["Accepted", "SendGridStandIn"]
