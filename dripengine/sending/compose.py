"""Composing one step's email for one lead: the template, the lead, the step and the campaign in,
subject, HTML and text out. The one place this is done: the dispatcher, ``drip campaigns
preview``, ``drip campaigns simulate`` and ``drip send-test`` all call :func:`compose`; they
differ only in the links they pass (real signed unsubscribe links, or placeholders that can never
unsubscribe anyone) and in click tracking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.variants import Variant, subject_of, template_of
from dripengine.templates import RenderedEmail, Sender, TemplateEngine, build_context
from dripengine.templates.links import RewriteLink, utm_from


def compose(
    templates: TemplateEngine,
    campaign: Campaign,
    track: str,
    step: Step,
    lead: Mapping[str, Any] | object,  # a mapping of the lead's fields, or a row naming them
    *,
    sender: Sender,
    recycle: Mapping[str, Any] | None,
    unsubscribe_url: str,
    preferences_url: str,
    rewrite_link: RewriteLink | None = None,
    variant: Variant | None = None,
) -> RenderedEmail:
    """Render ``step`` of ``campaign`` for ``lead``; :class:`TemplateError` names file and line.

    With ``variant`` (one of the step's A/B variants), its subject and template replace the
    step's where it gives them."""
    context = build_context(
        lead,
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        step_id=step.id,
        track=track,
        sender=sender,
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
        recycle=recycle,
    )
    return templates.render(
        template_of(step, variant),
        context,
        subject=subject_of(step, variant),
        utm=utm_from(campaign.send.utm),
        rewrite_link=rewrite_link,
    )


__all__ = ["compose"]
