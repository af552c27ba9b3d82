"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook, as ``web/events_webhook.py`` serves it.

What is SendGrid's own: the signature is checked with the official library's ``EventWebhook``
helper over ``timestamp + body``, and the timestamp must be within ``webhooks.max_age_seconds`` of
now (403 otherwise, unless ``webhooks.verify_signatures`` is false); the signature headers and the
timestamp are checked before the body is read. The body must be a JSON array of events (400), each
read by :mod:`dripengine.providers.sendgrid.events` (unreadable ones are skipped and counted).

SendGrid retries what is not answered 2xx, so a 4xx is only for what will never be accepted, and a
5xx only for our own fault (503 when verification is on and no public key is set: the events wait
at SendGrid until the key is there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sendgrid.helpers.eventwebhook import EventWebhook as Verifier

from dripengine.config import WebhookSettings
from dripengine.exceptions import ConfigError
from dripengine.providers.sendgrid.events import parse_events
from dripengine.providers.webhook import BadPayload, EventWebhook, ParsedEvents, Refusal

PATH = "/webhooks/sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
KEY_SETTING = "webhooks.sendgrid_public_key (DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY)"


def load_public_key(value: str) -> EllipticCurvePublicKey:
    """The key as SendGrid's settings page shows it (base64 DER); a pasted PEM works too."""
    lines = [line.strip() for line in value.strip().splitlines()]
    body = "".join(line for line in lines if line and not line.startswith("-----"))
    try:
        key = Verifier().convert_public_key_to_ecdsa(body)
    except ValueError as exc:
        raise ConfigError(
            f"{KEY_SETTING} is not a public key as SendGrid shows it (base64, starting MFkw…): {exc}"
        ) from None
    if not isinstance(key, EllipticCurvePublicKey):
        raise ConfigError(f"{KEY_SETTING} is not an ECDSA key: paste the Event Webhook's key")
    return key


def header_problem(
    signature: str | None, timestamp: str | None, now: float, max_age: int
) -> str | None:
    """What the signature headers alone show to be wrong: missing, a timestamp that is not unix
    seconds (at most 12 digits: a 5,000-digit one is not a time), or one too old or ahead."""
    if not signature or not timestamp:
        return f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header (is the webhook signed?)"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} is not unix seconds"
    age = now - int(timestamp)
    if abs(age) > max_age:
        when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
        return (
            f"signature timestamp is {when} (webhooks.max_age_seconds is {max_age}): "
            "a replay, or a clock that is wrong"
        )
    return None


def signature_problem(
    body: str,
    signature: str | None,
    timestamp: str | None,
    key: EllipticCurvePublicKey,
    now: float,
    max_age: int,
) -> str | None:
    """Why the request is refused, or None when it is signed by ``key`` and fresh."""
    problem = header_problem(signature, timestamp, now, max_age)
    if problem:
        return problem
    try:
        valid = Verifier().verify_signature(body, signature, timestamp, public_key=key)
    except (ValueError, TypeError):  # not base64, not DER
        valid = False
    return None if valid else "the signature does not match the body and the public key"


class SendGridEvents(EventWebhook):
    """The Event Webhook under ``webhooks.*``; a key that is not one raises :class:`ConfigError`."""

    path = PATH
    esp_name = "SendGrid"

    def __init__(self, hooks: WebhookSettings) -> None:
        self.verify = hooks.verify_signatures
        self.max_age = hooks.max_age_seconds
        self.key = load_public_key(hooks.sendgrid_public_key) if hooks.sendgrid_public_key else None

    def warnings(self) -> list[str]:
        if self.verify and self.key is None:
            return [
                f"{PATH} answers 503 until {KEY_SETTING} is set "
                "(or webhooks.verify_signatures = false)"
            ]
        if not self.verify:
            return [f"{PATH} accepts unsigned events: webhooks.verify_signatures is false"]
        return []

    def check_headers(self, headers: Mapping[str, str], now: float) -> Refusal | None:
        if not self.verify or self.key is None:
            return None  # the route answers (unsigned accepted, or 503 for the missing key)
        problem = header_problem(
            headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), now, self.max_age
        )
        return None if problem is None else Refusal(403, problem)

    def validate(self, headers: Mapping[str, str], body: str, now: float) -> Refusal | None:
        if not self.verify:
            return None
        if self.key is None:
            return Refusal(503, f"signature verification is on and {KEY_SETTING} is not set")
        problem = signature_problem(
            body,
            headers.get(SIGNATURE_HEADER),
            headers.get(TIMESTAMP_HEADER),
            self.key,
            now,
            self.max_age,
        )
        return None if problem is None else Refusal(403, problem)

    def items(self, payload: Any) -> list[Any]:
        if not isinstance(payload, list):
            raise BadPayload("expected a JSON array of events")
        return payload

    def parse(self, items: list[Any]) -> ParsedEvents:
        return parse_events(items)
