"""Which group of a campaign's holdout test a lead is in. Pure.

A campaign with ``holdout: 10%`` enrolls every lead routed to it, and sends nothing to about one in
ten: the holdout group, whose requalifications say what would have happened without the emails.
The group comes from a stable hash of the lead's normalised address and the campaign id, so a
re-run, a re-import, another worker and either database agree, and each campaign splits its leads
independently of the others (docs/holdout.md).
"""

from __future__ import annotations

import hashlib

__all__ = ["bucket", "in_holdout", "point"]

_SCALE = float(1 << 64)


def point(key: bytes) -> float:
    """A stable place in [0, 1) for ``key``: the first 8 bytes of its SHA-256 over 2**64. What
    the holdout group and an A/B variant (:mod:`.variants`) are drawn from."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / _SCALE


def bucket(email: str, campaign_id: str) -> float:
    """The lead's place in [0, 1) for this campaign: the :func:`point` of
    ``"<campaign id>\\n<address>"`` (the address trimmed and lowercased)."""
    return point(f"{campaign_id}\n{email.strip().lower()}".encode())


def in_holdout(email: str, campaign_id: str, share: float) -> bool:
    """True when the lead belongs to the campaign's holdout group (``share`` 0: never)."""
    return share > 0 and bucket(email, campaign_id) < share
