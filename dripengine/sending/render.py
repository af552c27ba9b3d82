"""The third stage of a round: each :class:`~dripengine.sending.decide.Send` becomes an
:class:`~dripengine.mail.message.OutgoingEmail`.

The content is :func:`dripengine.sending.compose.compose`'s (the one place a template is rendered
with a lead); around it this adds what only a real send has: the signed unsubscribe and preferences
links (:func:`dripengine.tokens.sign`), our own open pixel and click redirects when the provider
does not track engagement itself (:attr:`Provider.tracks_engagement`), and the envelope (From, To
with the lead's sanitised name, Reply-To, List-Unsubscribe, categories). A template error fails
that email only.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime

from dripengine.config import Settings
from dripengine.engagement import tracking
from dripengine.mail.message import OutgoingEmail, mailbox
from dripengine.providers.base import Provider
from dripengine.sending.compose import compose
from dripengine.sending.decide import Send
from dripengine.templates import Sender, TemplateEngine, TemplateError
from dripengine.templates.text import one_line
from dripengine.tokens import sign


def render(
    sends: Sequence[Send],
    now: datetime,
    *,
    templates: TemplateEngine,
    settings: Settings,
    provider: Provider,
) -> None:
    """Set each send's ``email``, or its ``error`` when its template fails."""
    base = settings.sender.base_url.rstrip("/")
    senders: dict[str, Sender] = {}  # parsing the From address costs ~25 µs: once a campaign
    # the template files are checked for changes once a batch, not once an email (four
    # stat calls an email were ~45 µs); a broken template still fails each of its emails
    for name in {send.template for send in sends}:
        with suppress(TemplateError):
            templates.load(name)
    check_files, templates.check_files = templates.check_files, False
    try:
        _render_each(sends, now, base, senders, templates, settings, provider)
    finally:
        templates.check_files = check_files


def _render_each(
    sends: Sequence[Send],
    now: datetime,
    base: str,
    senders: dict[str, Sender],
    templates: TemplateEngine,
    settings: Settings,
    provider: Provider,
) -> None:
    secret = settings.sender.secret_key
    # our own tracking for mail the provider does not track (see dripengine.engagement.tracking)
    own_tracking = not provider.tracks_engagement
    track_clicks, track_opens = (
        own_tracking and settings.web.track_clicks,
        own_tracking and settings.web.track_opens,
    )
    for send in sends:
        campaign = send.campaign
        sender = senders.get(campaign.id)
        if sender is None:
            sender = senders[campaign.id] = Sender(
                campaign.send.sender_name,
                campaign.send.sender_email,
                settings.sender.postal_address,
            )
        token = sign(settings.sender.secret_key, "unsubscribe", send.uid)
        try:
            rendered = compose(
                templates,
                campaign,
                send.track,
                send.step,
                send.lead,
                sender=sender,
                recycle=send.recycle,
                unsubscribe_url=f"{base}/u/{token}",
                preferences_url=f"{base}/p/{token}",
                rewrite_link=(
                    tracking.click_rewriter(base, secret, send.uid)
                    if track_clicks
                    else None
                    if own_tracking
                    else tracking.tag_in_url  # the provider tracks: the tag rides in the URL
                ),
                variant=send.variant,
            )
        except TemplateError as exc:
            send.error = f"template error: {exc}"
            continue
        html = rendered.html
        if track_opens:
            html = tracking.add_pixel(html, tracking.open_url(base, secret, send.uid))
        # lead data never reaches a header unsanitised: no CR/LF, no control characters
        lead = send.lead
        name = one_line(" ".join(p for p in (lead.first_name, lead.last_name) if p))
        send.email = OutgoingEmail(
            uid=send.uid,
            sender=campaign.send.from_,
            to=mailbox(name, lead.email),
            subject=rendered.subject,
            html=html,
            text=rendered.text,
            created_at=now,
            reply_to=campaign.send.reply_to,
            unsubscribe_url=f"{base}/u/{token}",
            categories=(campaign.id, send.step.id),
        )


__all__ = ["render"]
