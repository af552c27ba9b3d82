"""Small builders for test data."""

from __future__ import annotations

from typing import Any

from dripengine.campaigns import Campaign


def campaign(
    cid: str, priority: int, stages: list[str], reasons: list[str], **extra: Any
) -> Campaign:
    """A valid campaign: cold (checkin 1d, guide 3d) and hot (demo 2h) tracks, Berlin, Mon-Thu 9-17."""
    data: dict[str, Any] = {
        "id": cid,
        "name": cid.replace("-", " ").title(),
        "priority": priority,
        "audience": {"stages": stages, "reasons": reasons},
        "send": {
            "from": "Acme <hello@acme.example>",
            "timezone": "Europe/Berlin",
            "window": {"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "17:00"},
        },
        "tracks": {
            "cold": {
                "min_score": 0,
                "steps": [
                    {"id": "checkin", "wait": "1d", "template": "x/checkin.mjml", "subject": "Hi"},
                    {"id": "guide", "wait": "3d", "template": "x/guide.mjml", "subject": "Guide"},
                ],
            },
            "hot": {
                "min_score": 60,
                "steps": [
                    {"id": "demo", "wait": "2h", "template": "x/demo.mjml", "subject": "Demo?"},
                ],
            },
        },
    }
    data.update(extra)
    return Campaign.model_validate(data)
