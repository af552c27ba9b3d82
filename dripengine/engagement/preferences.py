"""What the unsubscribe and preferences pages read and change, by the message a link came from.

Unsubscribing goes through ``Engagement.ingest`` like every other event (it suppresses the
address and exits every enrollment); leaving one campaign is the one change made here: that
message's enrollment exits, the address stays mailable by other campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dripengine.leads.optout import ERASED_DOMAIN
from dripengine.storage import Engine
from dripengine.storage import unsubscribes as store

LEFT_CAMPAIGN = "left the campaign (preferences page)"


@dataclass(frozen=True)
class MessageView:
    """The message a link came from, as the pages need it."""

    uid: str
    email: str
    campaign_id: str | None
    enrollment_active: bool
    suppressed: bool
    subject: str | None = None  # as the person got it

    @property
    def masked_email(self) -> str:
        """``j•••@acme.example``: enough to recognise, not enough to harvest from a forwarded link."""
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}•••@{domain}"


def find_message(engine: Engine, uid: str) -> MessageView | None:
    """The message with our ``uid``, or None (never sent by us, or its lead was erased)."""
    with engine.connect() as connection:
        row = store.message_page(connection, uid)
    if row is None or row.email.endswith("@" + ERASED_DOMAIN):  # `drip leads forget`
        return None
    return MessageView(
        uid=row.uid,
        email=row.email,
        campaign_id=row.campaign_id,
        enrollment_active=row.status == "active",
        suppressed=row.suppression_id is not None,
        subject=row.subject,
    )


def leave_campaign(engine: Engine, uid: str, now: datetime) -> bool:
    """Exit the active enrollment the message ``uid`` belongs to; False when there was none."""
    with engine.begin() as connection:
        return store.exit_enrollment_of(connection, uid, LEFT_CAMPAIGN, now)
