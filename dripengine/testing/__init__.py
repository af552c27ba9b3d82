"""Fakes that ship with the package, for tests and benchmarks (ours and yours).

:class:`SendGridStandIn` is a real HTTP server on loopback that answers ``POST /v3/mail/send`` the
way SendGrid documents it, with fault injection and a latency model.
"""

from __future__ import annotations

from dripengine.testing.sendgrid_standin import Accepted, SendGridStandIn

__all__ = ["Accepted", "SendGridStandIn"]
