"""Choose the campaign for a recycled lead: the first, by priority, whose audience takes it. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dripengine.campaigns.schema import Audience, Campaign

__all__ = ["LeadFacts", "audience_matches", "explain_no_match", "route", "routing_order"]


@dataclass(frozen=True)
class LeadFacts:
    """What routing knows about a recycled lead.

    ``fields`` holds the lead's columns (country, company, title, timezone, source) merged with
    its free attributes.
    """

    from_stage: str
    reason: str
    fields: Mapping[str, Any] = field(default_factory=dict)


def routing_order(campaigns: Sequence[Campaign]) -> list[Campaign]:
    """Campaigns in the order routing tries them: lower priority number first, then by id."""
    return sorted(campaigns, key=lambda campaign: (campaign.priority, campaign.id))


def route(campaigns: Sequence[Campaign], facts: LeadFacts) -> Campaign | None:
    """The first campaign, by ``(priority, id)``, whose audience matches; None if none does."""
    for campaign in routing_order(campaigns):
        if audience_matches(campaign.audience, facts):
            return campaign
    return None


def audience_matches(audience: Audience, facts: LeadFacts) -> bool:
    """Stage listed, reason listed (or no reasons listed), and every attribute filter matches."""
    return (
        facts.from_stage in audience.stages
        and (not audience.reasons or facts.reason in audience.reasons)
        and _failed_attribute(audience, facts) is None
    )


def explain_no_match(campaigns: Sequence[Campaign], facts: LeadFacts) -> str:
    """One short line saying why ``route`` found nothing for these facts."""
    ordered = routing_order(campaigns)
    stage, reason = facts.from_stage, facts.reason
    if not ordered:
        return "no campaigns are loaded"
    matched = next((c for c in ordered if audience_matches(c.audience, facts)), None)
    if matched is not None:
        return f'campaign "{matched.id}" matches'
    by_stage = [c for c in ordered if stage in c.audience.stages]
    if not by_stage:
        return f'no campaign takes stage "{stage}"'
    by_reason = [c for c in by_stage if not c.audience.reasons or reason in c.audience.reasons]
    if not by_reason:
        return f'no campaign takes stage "{stage}" with reason "{reason}"'
    first = by_reason[0]
    key = _failed_attribute(first.audience, facts)
    accepted = first.audience.attributes.get(key or "")
    wanted = ", ".join(str(v) for v in accepted) if isinstance(accepted, list) else str(accepted)
    has = facts.fields.get(key or "")
    others = f" (and {len(by_reason) - 1} more)" if len(by_reason) > 1 else ""
    return (
        f'no campaign for stage "{stage}" with reason "{reason}" matches the lead\'s attributes: '
        f'"{first.id}"{others} wants {key} {wanted}, the lead has {_show(has)}'
    )


def _failed_attribute(audience: Audience, facts: LeadFacts) -> str | None:
    """The first attribute filter the lead fails, or None when all pass."""
    for key, accepted in audience.attributes.items():
        options = accepted if isinstance(accepted, list) else [accepted]
        value = facts.fields.get(key)
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        wanted = {_normalise(option) for option in options}
        if not any(v is not None and _normalise(v) in wanted for v in values):
            return key
    return None


def _normalise(value: Any) -> str:
    """Compare as text, ignoring case and surrounding spaces: "de" == "DE", 50 == "50" == 50.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().casefold()


def _show(value: Any) -> str:
    if value is None:
        return "none"
    return f'"{value}"' if isinstance(value, str) else str(value)
