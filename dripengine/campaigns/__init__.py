"""Campaigns: the YAML schema, loading with ``file:line`` errors, audience routing, send windows.

Everything here is pure logic: no database, no network.
"""

from __future__ import annotations

from dripengine.campaigns.durations import format_duration, parse_duration
from dripengine.campaigns.loader import (
    BrokenFile,
    CampaignFolder,
    dump_campaign,
    load_campaign_file,
    load_campaign_folder,
    load_campaigns,
    validate_campaigns,
)
from dripengine.campaigns.routing import (
    LeadFacts,
    audience_matches,
    explain_no_match,
    route,
    routing_order,
)
from dripengine.campaigns.schema import (
    ALWAYS_EXIT,
    CONDITION_EVENTS,
    EXIT_EVENTS,
    LEAD_FIELDS,
    STAGES,
    WEEKDAYS,
    Audience,
    Campaign,
    Condition,
    ExitRules,
    Reentry,
    SendPolicy,
    SendWindow,
    Step,
    Track,
    UTMSettings,
)
from dripengine.campaigns.window import in_window, next_opening, resolve_timezone

__all__ = [
    "ALWAYS_EXIT",
    "CONDITION_EVENTS",
    "EXIT_EVENTS",
    "LEAD_FIELDS",
    "STAGES",
    "WEEKDAYS",
    "Audience",
    "BrokenFile",
    "Campaign",
    "CampaignFolder",
    "Condition",
    "ExitRules",
    "LeadFacts",
    "Reentry",
    "SendPolicy",
    "SendWindow",
    "Step",
    "Track",
    "UTMSettings",
    "audience_matches",
    "dump_campaign",
    "explain_no_match",
    "format_duration",
    "in_window",
    "load_campaign_file",
    "load_campaign_folder",
    "load_campaigns",
    "next_opening",
    "parse_duration",
    "resolve_timezone",
    "route",
    "routing_order",
    "validate_campaigns",
]
