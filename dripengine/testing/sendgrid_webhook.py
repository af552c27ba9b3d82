"""SendGrid Event Webhook stand-in for tests and benchmarks: events shaped as SendGrid posts them,
signed as SendGrid signs them.

SendGrid signs ``timestamp + body`` (the ``X-Twilio-Email-Event-Webhook-Timestamp`` header's text
followed by the raw request body, as bytes) with ECDSA P-256 over SHA-256; the signature goes in
``X-Twilio-Email-Event-Webhook-Signature`` as base64 DER, and the public key its settings page shows
is the base64 DER SubjectPublicKeyInfo (a PEM without its armour lines)::

    signer = Signer.generate()
    settings.webhooks.sendgrid_public_key = signer.public_key
    headers = signer.headers(body, timestamp=int(time.time()))
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dripengine.providers.sendgrid.provider import UID_ARG

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class Signer:
    """An ECDSA P-256 key pair that signs webhook bodies the way SendGrid does."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.private_key = private_key

    @classmethod
    def generate(cls) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        """Base64 DER SubjectPublicKeyInfo, as SendGrid's "Signed Event Webhook" page shows it."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.private_key.sign(
            timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256())
        )
        return base64.b64encode(signature).decode("ascii")

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        stamp = str(timestamp)
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(body, stamp),
            TIMESTAMP_HEADER: stamp,
        }


def sendgrid_event(
    event: str,
    *,
    timestamp: int,
    uid: str | None = None,
    email: str = "jane@acme.example",
    sg_message_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One event as SendGrid posts it (documented common fields, our custom arg at top level)."""
    message_id = (
        sg_message_id or f"{uuid.uuid4().hex[:22]}.filterdrecv-5bf8b8d5d6-abcde-1-6390D3C9-2.0"
    )
    item: dict[str, Any] = {
        "email": email,
        "timestamp": timestamp,
        "event": event,
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": message_id,
        "smtp-id": f"<{message_id.split('.')[0]}@ismtpd0001p1lon1.sendgrid.net>",
        "category": ["drip", "lost-sql-winback"],
    }
    if uid is not None:
        item[UID_ARG] = uid
    item.update(EVENT_FIELDS.get(event, {}))
    item.update(fields)
    return item


# the fields each event type adds, as in SendGrid's Event Webhook reference
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "processed": {"pool": {"name": "new_MY_test", "id": 210}},
    "delivered": {"response": "250 OK", "ip": "168.1.1.1", "tls": 1},
    "deferred": {"response": "400 try again later", "attempt": "5", "ip": "168.1.1.1"},
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "bounce": {
        "type": "bounce",
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "bounce_classification": "Invalid Address",
        "ip": "168.1.1.1",
    },
    "open": {
        "useragent": "Mozilla/4.0 (compatible; MSIE 6.1)",
        "ip": "255.255.255.255",
        "sg_machine_open": False,
    },
    "click": {
        "useragent": "Mozilla/4.0",
        "ip": "255.255.255.255",
        "url": "https://acme.example/pricing?utm_source=drip&utm_content=checkin",
        "url_offset": {"index": 0, "type": "html"},
    },
    "spamreport": {},
    "unsubscribe": {},
    "group_unsubscribe": {"asm_group_id": 10, "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
    "group_resubscribe": {"asm_group_id": 10, "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
}
