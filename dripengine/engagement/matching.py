"""An ingest's first step: which message (or lead) each incoming event is about.

An event names our message by our uid (the ``drip_uid`` custom argument, our tracking tokens), else
by the provider's message id (the answer to our send); an event without a message of ours (an API
event, an inbound reply) names a lead by its address. A click too soon after the email left us is
a link scanner's: it is marked as a machine event here, before it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dripengine import vocabulary as v
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.scoring.rules import ScoringRules
from dripengine.storage import Connection
from dripengine.storage import events as store
from dripengine.vocabulary import IncomingEvent


@dataclass
class Matched:
    event: IncomingEvent
    key: str  # the event's dedupe key
    message: Mapping[str, Any] | None  # our message: id, uid, lead_id, campaign_id, step_id, …
    lead_id: int | None


def match(
    connection: Connection, keyed: Sequence[tuple[str, IncomingEvent]], rules: ScoringRules
) -> list[Matched]:
    """Each ``(dedupe key, event)`` with its message and lead (None when there is none), in the
    order given."""
    events = [e for _, e in keyed]
    uids = {e.message_uid for e in events if e.message_uid}
    provider_ids = {  # as the parser left them: the X-Message-Id our send was answered with
        e.provider_message_id for e in events if not e.message_uid and e.provider_message_id
    }
    by_uid = store.messages_by_uid(connection, sorted(uids))
    by_provider = store.messages_by_provider_id(connection, sorted(provider_ids))
    emails: set[str] = set()
    for e in events:
        if e.email and (e.message_uid or "") not in by_uid:
            email = normalised(e.email)
            if email:
                emails.add(email)
    leads = store.lead_ids_by_email(connection, sorted(emails))
    matched = []
    for key, e in keyed:
        message = by_uid.get(e.message_uid) if e.message_uid else None
        if message is None and e.provider_message_id:
            message = by_provider.get(e.provider_message_id)
        lead_id = message["lead_id"] if message is not None else None
        if lead_id is None and e.email:
            lead_id = leads.get(normalised(e.email) or "")
        if (
            e.type == v.CLICK
            and not e.machine
            and message is not None
            and rules.is_scanner_click(e.occurred_at, message["sent_at"])
        ):
            e = replace(e, machine=True, detail=e.detail or "clicked seconds after sending")
        matched.append(Matched(e, key, message, lead_id))
    return matched


def normalised(email: str) -> str | None:
    try:
        return normalise_email(email)
    except InvalidEmail:  # an unusable address matches no lead
        return None


__all__ = ["Matched", "match", "normalised"]
