"""SendGrid as `drip demo` plays it: what SendGrid posts to `drip serve`, sent over HTTP.

A bounce as the signed Event Webhook posts it (signed by a :class:`Signer` whose public half goes
into the settings) and a reply as Inbound Parse posts it (at the route of
``webhooks.inbound_secret``, with the SPF/DKIM verdicts and spam score SendGrid adds after checking
the reply: only an authenticated reply counts). The demo reaches it through
:func:`dripengine.testing.esp_posts`, so it never names the ESP it plays.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr

import urllib3

from dripengine.providers.sendgrid.provider import UID_ARG
from dripengine.testing.sendgrid_webhook import Signer


class SendGridPosts:
    name = "SendGrid"  # who posts, in the demo's story
    inbound_name = "SendGrid Inbound Parse"

    def __init__(self) -> None:
        self.signer = Signer.generate()
        self.inbound_secret = secrets.token_urlsafe(24)

    def environ(self) -> dict[str, str]:
        """The settings `drip serve` needs to take these posts (the key, the inbound secret)."""
        return {
            "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": self.signer.public_key,
            "DRIP_WEBHOOKS_INBOUND_SECRET": self.inbound_secret,
        }

    def bounce(
        self, http: urllib3.PoolManager, base: str, message: EmailMessage, now: datetime
    ) -> int:
        """A hard bounce of ``message`` a minute before ``now``, signed at ``now``; the status."""
        uid = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        event = {
            "email": _address(str(message["To"])),
            "timestamp": int(now.timestamp()) - 60,
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist",
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": f"demo{secrets.token_hex(8)}.filter0001",
            UID_ARG: uid,
        }
        body = json.dumps([event]).encode()
        stamp = int(now.timestamp())  # SendGrid signs with its own clock
        answer = http.request(
            "POST",
            base + "/webhooks/sendgrid",
            body=body,
            headers=self.signer.headers(body, timestamp=stamp),
        )
        return answer.status

    def reply(
        self, http: urllib3.PoolManager, base: str, message: EmailMessage, subject: str, text: str
    ) -> int:
        """The recipient of ``message`` answers it with ``text``; the status."""
        to = str(message["To"])
        sender = _address(to)
        headers = (
            f"From: {to}\nTo: {message['From']}\nSubject: {subject}\n"
            f"In-Reply-To: {message['Message-ID']}\n"
            f"References: {message['Message-ID']}\n"
        )
        fields = {
            "headers": headers,
            "from": to,
            "to": str(message["From"]),
            "subject": subject,
            "text": text,
            "envelope": json.dumps({"from": sender, "to": [str(message["From"])]}),
            # what SendGrid adds after checking the reply: only an authenticated one counts
            "SPF": "pass",
            "dkim": "{@" + sender.rpartition("@")[2] + " : pass}",
            "spam_score": "0.3",
        }
        answer = http.request(
            "POST", f"{base}/webhooks/sendgrid/inbound/{self.inbound_secret}", fields=fields
        )
        return answer.status


def _address(header: str) -> str:
    return parseaddr(header)[1].lower()
