"""The CRM handoff of a requalified lead, the pure half: body, signature, backoff. No I/O.

The body is the Handoff row's payload as JSON with ``handoff_id`` (the row's ``uid``) added: the
CRM's idempotency key. It is signed like Stripe and GitHub sign their webhooks: ``X-Drip-Timestamp``
is the Unix time of the attempt and ``X-Drip-Signature`` is ``sha256=`` + the hex HMAC-SHA256 of
``timestamp + "." + body`` under ``crm.webhook_secret``. The receiver recomputes it over the raw
body, compares in constant time and refuses old timestamps (docs/handoff.md has the recipe).

Delivery (:mod:`dripengine.handoff.delivery`) retries until a 2xx with exponential backoff and
jitter: the n-th failed attempt waits between half and all of ``min(cap, BASE * 2**(n-1))``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

SIGNATURE_HEADER = "X-Drip-Signature"
TIMESTAMP_HEADER = "X-Drip-Timestamp"
ID_HEADER = "X-Drip-Handoff-Id"
BACKOFF_BASE = timedelta(seconds=30)
ERROR_MAX = 500  # characters of an error kept in Handoff.last_error


def body(uid: str, payload: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> bytes:
    """The JSON body of one handoff: ``defaults`` (columns of the row), the payload, ``handoff_id``.

    The payload's own keys win over ``defaults``; ``handoff_id`` is always the row's uid.
    """
    document = {**(defaults or {}), **payload, "handoff_id": uid}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>." + payload`` under ``secret``."""
    message = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def headers(secret: str, timestamp: int, payload: bytes, uid: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, payload),
        ID_HEADER: uid,
    }


def verify(
    secret: str, timestamp: str, payload: bytes, given: str, *, now: int, max_age: int = 300
) -> bool:
    """The receiver's check (what docs/handoff.md shows a CRM doing); used by the tests."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > max_age:
        return False
    return hmac.compare_digest(signature(secret, stamp, payload), given)


def backoff(attempts: int, cap_seconds: float, rng: random.Random) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: exponential, capped, jittered.

    Between half and all of ``min(cap, BASE * 2**(attempts-1))`` ("equal jitter"): workers that
    failed together do not come back together, and the wait never drops to nothing.
    """
    exponent = max(attempts - 1, 0)
    base = BACKOFF_BASE.total_seconds()
    ceiling = min(float(cap_seconds), base * 2 ** min(exponent, 40))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


def short_error(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= ERROR_MAX else line[: ERROR_MAX - 1] + "…"


__all__ = [
    "BACKOFF_BASE",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "backoff",
    "body",
    "headers",
    "short_error",
    "signature",
    "verify",
]
