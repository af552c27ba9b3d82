"""How the unsubscribe and preferences pages name the series (campaign) a link came from.

A campaign's ``public_name`` is what recipients see; its ``name`` is for the team ("Lost SQL
win-back" is not something to show the lead it describes), so without a ``public_name`` the page
names the series by the subject of the email the person clicked from.
"""

from __future__ import annotations

import logging

from dripengine.campaigns.loader import validate_campaigns
from dripengine.config import Settings

log = logging.getLogger("dripengine.web")


def public_names(settings: Settings) -> dict[str, str]:
    """``campaign id -> public_name`` of the campaign files that are valid now (read per page, as
    the API reads them per request: an edit counts at once; a broken file is left out)."""
    campaigns, _ = validate_campaigns(settings.path("campaigns"))
    return {c.id: c.public_name for c in campaigns if c.public_name}


def series_label(settings: Settings, campaign_id: str | None, subject: str | None) -> str:
    """``“Check-ins from Acme”``, or ``the series that sent you “Still thinking about it?”``."""
    name = public_names(settings).get(campaign_id or "")
    if name:
        return f"“{name}”"
    if subject:
        return f"the series that sent you “{subject}”"
    return "this series of emails"
