"""What the unsubscribe and preferences pages read and change, by the message a link came from.

Unsubscribing goes through ``Engagement.ingest`` like every other event (it suppresses the
address and exits every enrollment); leaving one campaign is the one change made here: that
message's enrollment exits, the address stays mailable by other campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Engine

from dripengine.leads.optout import ERASED_DOMAIN
from dripengine.storage.models import Enrollment, Lead, Message, Suppression

MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
SUPPRESSION: Table = Suppression.__table__  # type: ignore[attr-defined]

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
    query = (
        select(
            MESSAGE.c.uid,
            LEAD.c.email,
            MESSAGE.c.campaign_id,
            MESSAGE.c.subject,
            ENROLLMENT.c.status,
            SUPPRESSION.c.id.label("suppression_id"),
        )
        .select_from(
            MESSAGE.join(LEAD, LEAD.c.id == MESSAGE.c.lead_id)
            .outerjoin(ENROLLMENT, ENROLLMENT.c.id == MESSAGE.c.enrollment_id)
            .outerjoin(SUPPRESSION, SUPPRESSION.c.email == LEAD.c.email)
        )
        .where(MESSAGE.c.uid == uid)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
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
    enrollment = select(MESSAGE.c.enrollment_id).where(MESSAGE.c.uid == uid).scalar_subquery()
    statement = (
        update(ENROLLMENT)
        .where(ENROLLMENT.c.id == enrollment, ENROLLMENT.c.status == "active")
        .values(
            status="exited",
            exit_reason=LEFT_CAMPAIGN,
            ended_at=now,
            next_due_at=None,
            updated_at=now,
        )
    )
    with engine.begin() as connection:
        return connection.execute(statement).rowcount > 0
