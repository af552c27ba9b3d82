"""Why an address is suppressed, and which suppressions a plain removal may not undo.

The suppression list itself (plain and hashed entries, the look-ups, adding and removing) is
:mod:`dripengine.storage.suppression`. Removing a suppression is refused for the reasons that
protect the sender's reputation (a spam complaint, a hard bounce) and for an erasure, unless
forced: see :func:`removal_refusal`.
"""

from __future__ import annotations

REASONS = ("manual", "unsubscribe", "hard_bounce", "spam_report", "erased")
ERASED = "erased"  # the reason of the hashed entry `drip leads forget` leaves
# reasons a plain `drip suppress remove` refuses, and why
PROTECTED: dict[str, str] = {
    "spam_report": "the person reported an email as spam: mailing a complainer again hurts the "
    "sender's reputation with every mailbox provider",
    "hard_bounce": "the address does not exist: mailing it again raises the bounce rate mailbox "
    "providers judge the sender by",
    ERASED: "the person asked to be forgotten (GDPR erasure): the hashed entry is what keeps "
    "them from being mailed again",
}


def removal_refusal(reason: str) -> str | None:
    """Why removing a suppression with ``reason`` needs ``--force``; None when it does not."""
    return PROTECTED.get(reason)


__all__ = ["ERASED", "PROTECTED", "REASONS", "removal_refusal"]
