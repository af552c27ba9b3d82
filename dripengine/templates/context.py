"""What a template sees: ``lead``, ``recycle``, ``campaign``, ``step``, ``sender`` and the URLs.

``lead`` holds the lead's fields and its free attributes (``lead.industry``), the attributes also
as ``lead.attributes.industry``; a field wins over an attribute of the same name. Empty fields are
left out, so ``{{ lead.company | default('your team') }}`` falls back for a lead without a
company. ``link`` (see :mod:`dripengine.templates.links`) is added per message by the renderer.

:func:`sample_context` is the lead every preview and ``drip campaigns validate`` render against:
every field filled. :func:`sparse_context` is the same lead with nothing but an address, which
validation uses to find a field written without a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import UndefinedError

from dripengine.storage.models import CONTACT_FIELDS

LEAD_FIELDS = ("email", *CONTACT_FIELDS, "stage", "score")
"""The lead columns a template can use (besides free attributes)."""


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    postal_address: str


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def lead_context(lead: Mapping[str, Any] | object) -> dict[str, Any]:
    """The ``lead`` variable from a Lead row or a plain mapping of fields and ``attributes``."""
    if isinstance(lead, Mapping):
        get = lead.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(lead, name, default)

    attributes = {k: v for k, v in dict(get("attributes") or {}).items() if _present(v)}
    fields = {name: get(name) for name in LEAD_FIELDS}
    return {
        **attributes,
        **{k: v for k, v in fields.items() if _present(v)},
        "attributes": attributes,
    }


def build_context(
    lead: Mapping[str, Any] | object,
    *,
    campaign_id: str,
    campaign_name: str,
    step_id: str,
    track: str,
    sender: Sender,
    unsubscribe_url: str,
    preferences_url: str,
    recycle: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every variable a template may use, for one lead and one step.

    ``recycle`` holds ``from_stage``, ``reason`` and ``reason_label`` of the latest recycle.
    """
    return {
        "lead": lead_context(lead),
        "recycle": {k: v for k, v in dict(recycle or {}).items() if _present(v)},
        "campaign": {"id": campaign_id, "name": campaign_name},
        "step": {"id": step_id, "track": track},
        "sender": {
            "name": sender.name,
            "email": sender.email,
            "postal_address": sender.postal_address,
        },
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "postal_address": sender.postal_address,
    }


SAMPLE_LEAD: dict[str, Any] = {
    "email": "jane.doe@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "company": "Globex Corporation",
    "title": "Head of Operations",
    "phone": "+49 30 1234567",
    "country": "DE",
    "timezone": "Europe/Berlin",
    "source": "webinar",
    "stage": "recycled",
    "score": 42.0,
    "attributes": {"industry": "logistics", "employees": "250"},
}
SAMPLE_RECYCLE = {
    "from_stage": "sql",
    "reason": "no_budget",
    "reason_label": "No budget this year",
}


def sample_context(
    *,
    postal_address: str,
    campaign_id: str = "sample-campaign",
    campaign_name: str = "Sample campaign",
    step_id: str = "sample-step",
    track: str = "cold",
    sender_name: str = "Acme Growth Team",
    sender_email: str = "hello@acme.example",
    base_url: str = "http://127.0.0.1:8080",
    lead: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The sample lead (every field filled) in a full context, for previews and validation."""
    base = base_url.rstrip("/")
    return build_context(
        SAMPLE_LEAD if lead is None else lead,
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        step_id=step_id,
        track=track,
        sender=Sender(sender_name, sender_email, postal_address),
        unsubscribe_url=f"{base}/u/sample-unsubscribe-token",
        preferences_url=f"{base}/p/sample-preferences-token",
        recycle=SAMPLE_RECYCLE,
    )


class UnknownName(UndefinedError):
    """A template asked for a name the context does not have; ``suggestion`` is the nearest one."""

    def __init__(self, name: str, where: str, suggestion: str | None) -> None:
        self.name = name
        self.suggestion = suggestion
        hint = f'; did you mean "{suggestion}"?' if suggestion else ""
        super().__init__(f"'{name}' is undefined ({where} has no {name}{hint})")


class _Checked(dict[str, Any]):
    """A context mapping that refuses unknown keys even under ``| default(...)``.

    With ``free=True`` (the lead: free attributes may be anything) only a near miss of a known
    field is refused, so ``lead.frist_name | default('there')`` is caught and ``lead.industry``
    is not.
    """

    def __init__(self, data: Mapping[str, Any], where: str, known: tuple[str, ...], free: bool):
        super().__init__(data)
        self.where = where
        self.known = known
        self.free = free

    def __missing__(self, key: str) -> Any:
        names = list(dict.fromkeys([*self.known, *self.keys()]))
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.75)
        if self.free and not close:
            raise KeyError(key)
        raise UnknownName(str(key), self.where, close[0] if close else None)


def checked_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` for validation: a misspelt name is an error even where a default would hide it."""
    checked = dict(context)
    for key, value in context.items():
        if isinstance(value, Mapping):
            free = key == "lead"
            known = LEAD_FIELDS if free else tuple(value)
            data = dict(value)
            if free:
                data["attributes"] = _Checked(
                    data.get("attributes", {}), "lead.attributes", (), True
                )
            checked[key] = _Checked(data, key, known, free)
    return checked


def sparse_context(**kwargs: Any) -> dict[str, Any]:
    """:func:`sample_context` for a lead with nothing but an address and no recycle details."""
    context = sample_context(lead={"email": SAMPLE_LEAD["email"]}, **kwargs)
    context["recycle"] = {}
    return context
