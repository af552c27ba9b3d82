"""What a marketer checks before a real email goes out: preview one step, simulate a lead, test-send.

Everything here renders through the same :class:`~dripengine.templates.TemplateEngine` the daemon
uses, and writes nothing to the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.variants import Variant, chosen, find_variant
from dripengine.config import Settings
from dripengine.exceptions import CampaignError
from dripengine.funnel.sla import SLA
from dripengine.mail.message import OutgoingEmail, as_test
from dripengine.reports.leads import lead_with_recycle
from dripengine.sending.compose import compose
from dripengine.storage import Engine
from dripengine.storage.variants import winners
from dripengine.suggest import did_you_mean
from dripengine.templates import (
    SAMPLE_LEAD,
    RenderedEmail,
    Sender,
    TemplateEngine,
)
from dripengine.templates.context import SAMPLE_RECYCLE


@dataclass(frozen=True)
class PreviewLead:
    """A lead as templates see it, with its latest recycle (or the sample lead)."""

    fields: Mapping[str, Any]
    recycle: Mapping[str, Any]
    sample: bool

    @property
    def email(self) -> str:
        return str(self.fields.get("email") or SAMPLE_LEAD["email"])


def sample_lead() -> PreviewLead:
    return PreviewLead(SAMPLE_LEAD, SAMPLE_RECYCLE, sample=True)


def load_lead(engine: Engine, email: str, sla: SLA) -> PreviewLead:
    fields, record = lead_with_recycle(engine, email)
    recycle: dict[str, Any] = {}
    if record is not None:
        reason = sla.recycle_reasons.get(record["reason"])
        recycle = {
            "from_stage": record["from_stage"],
            "reason": record["reason"],
            "reason_label": reason.label if reason else record["reason"],
        }
    return PreviewLead(fields, recycle, sample=False)


def find_step(campaign: Campaign, step_id: str | None) -> tuple[str, Step]:
    """The step (with its track) by id; the campaign's first step when no id is given."""
    steps = list(campaign.all_steps())
    if step_id is None:
        return steps[0]
    for track, step in steps:
        if step.id == step_id:
            return track, step
    known = ", ".join(step.id for _, step in steps)
    hint = did_you_mean(step_id, (step.id for _, step in steps))
    raise CampaignError(f'campaign "{campaign.id}" has no step "{step_id}"{hint} (steps: {known})')


def find_campaign(campaigns: Sequence[Campaign], campaign_id: str) -> Campaign:
    for campaign in campaigns:
        if campaign.id == campaign_id:
            return campaign
    known = ", ".join(sorted(c.id for c in campaigns)) or "none"
    hint = did_you_mean(campaign_id, (c.id for c in campaigns))
    raise CampaignError(f'no campaign "{campaign_id}"{hint} (known: {known})')


def render_step(
    engine: TemplateEngine,
    campaign: Campaign,
    track: str,
    step: Step,
    lead: PreviewLead,
    settings: Settings,
    *,
    purpose: str = "preview",
    variant: Variant | None = None,
) -> RenderedEmail:
    """``step`` as a lead would get it, through :func:`~dripengine.sending.compose.compose` (the
    daemon's own path), with placeholder links: a preview never unsubscribes anyone. ``variant``:
    one of the step's A/B variants (:func:`pick_variant`)."""
    base = settings.sender.base_url.rstrip("/")
    return compose(
        engine,
        campaign,
        track,
        step,
        lead.fields,
        sender=Sender(
            campaign.send.sender_name, campaign.send.sender_email, settings.sender.postal_address
        ),
        recycle=lead.recycle,
        unsubscribe_url=f"{base}/u/{purpose}",
        preferences_url=f"{base}/p/{purpose}",
        variant=variant,
    )


def pick_variant(
    campaign: Campaign,
    step: Step,
    lead: PreviewLead,
    wanted: str | None,
    engine: Engine | None = None,
) -> Variant | None:
    """The variant to render: ``wanted`` (did-you-mean when the step has no such variant), else
    the one the lead gets (the recorded winner when ``engine`` is given and has one, else by the
    lead's hash); None for a step without variants."""
    if wanted is not None:
        try:
            return find_variant(step, wanted)
        except ValueError as exc:
            raise CampaignError(f"--variant: {exc}") from None
    winner = None
    if engine is not None and step.variants:
        with engine.connect() as connection:
            winner = winners(connection).get((campaign.id, step.id))
    return chosen(lead.email, campaign.id, step, winner)


def test_email(
    rendered: RenderedEmail, campaign: Campaign, to: str, now: datetime, settings: Settings
) -> OutgoingEmail:
    """A test send: marked [TEST] and X-Drip-Test; no Message row, so no stats and no score."""
    base = settings.sender.base_url.rstrip("/")
    return as_test(
        OutgoingEmail(
            uid=f"test-{uuid.uuid4().hex}",
            sender=campaign.send.from_,
            to=to,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            created_at=now,
            reply_to=campaign.send.reply_to,
            unsubscribe_url=f"{base}/u/test",
            categories=(campaign.id,),
        )
    )
