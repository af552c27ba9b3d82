"""The provider registry: each provider behind :class:`~dripengine.providers.base.Provider`, and
what each ESP brings besides sending (webhooks, event exports, settling unknown outcomes).

The one place that lists them: adding an ESP is a package under ``providers/`` (as
``providers/sendgrid/``) and its lines here; the dispatcher, the daemon, ``web/`` and ``drip events``
ask this module and never name one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dripengine.clock import Clock, FixedClock
from dripengine.config import Settings
from dripengine.exceptions import ConfigError
from dripengine.providers.base import Provider, SendResult
from dripengine.providers.outbox import OutboxProvider
from dripengine.providers.sendgrid.provider import DEFAULT_HOST, SendGridProvider
from dripengine.providers.smtp import SMTPProvider
from dripengine.providers.webhook import EventWebhook, InboundWebhook
from dripengine.storage import Engine
from dripengine.vocabulary import IncomingEvent

__all__ = [
    "OutboxProvider",
    "Provider",
    "SMTPProvider",
    "SendGridProvider",
    "SendResult",
    "build_provider",
    "event_parser",
    "event_webhooks",
    "inbound_webhooks",
    "provider_from_settings",
    "settle_unknown",
]

PROVIDERS: tuple[type[Provider], ...] = (OutboxProvider, SMTPProvider, SendGridProvider)
EVENT_FORMATS = ("sendgrid",)  # whose event exports `drip events ingest --provider` replays


def provider_from_settings(settings: Settings) -> Provider:
    """The configured provider; call its ``check()`` before relying on it."""
    name = settings.sending.provider
    if name == "smtp":
        smtp = settings.smtp
        return SMTPProvider(
            smtp.host,
            smtp.port,
            username=smtp.username,
            password=smtp.password,
            tls=smtp.tls,
            timeout=smtp.timeout,
        )
    if name == "sendgrid":
        sendgrid = settings.sendgrid
        if not sendgrid.api_key:
            raise ConfigError(
                "sending.provider is sendgrid but no API key is set: set SENDGRID_API_KEY "
                "(or api_key in [sendgrid] of drip.toml)"
            )
        return SendGridProvider(
            sendgrid.api_key,
            host=sendgrid.host or DEFAULT_HOST,
            max_in_flight=sendgrid.max_in_flight,
            timeout=sendgrid.timeout,
        )
    return OutboxProvider(settings.outbox_dir)


def build_provider(settings: Settings, engine: Engine, clock: Clock) -> Provider:
    """The configured provider, behind a token bucket and a daily cap when either is set.

    ``sending.rate_per_second`` / ``sending.burst`` pace it; ``sending.daily_cap`` counts this
    provider's messages of the UTC day in ``engine``'s database (see
    :mod:`dripengine.providers.ratelimit`). Call its ``check()`` before relying on it. With a
    :class:`FixedClock` (``drip --now``) waiting for tokens moves that clock instead of sleeping.
    """
    from dripengine.providers.ratelimit import RateLimitedProvider, sent_today_query

    provider = provider_from_settings(settings)
    sending = settings.sending
    if sending.rate_per_second is None and sending.daily_cap is None:
        return provider
    sleep: Callable[[float], None] = time.sleep
    if isinstance(clock, FixedClock):
        fixed = clock

        def sleep(seconds: float) -> None:
            fixed.advance(timedelta(seconds=seconds))

    return RateLimitedProvider(
        provider,
        rate=sending.rate_per_second,
        burst=sending.burst,
        daily_cap=sending.daily_cap,
        # a message is retried at most max_attempts times, each wait about a day at most
        sent_today=sent_today_query(engine, provider.name, lookback_days=sending.max_attempts + 2),
        clock=clock,
        sleep=sleep,
    )


def settle_unknown(engine: Engine, now: datetime, grace_hours: float) -> dict[str, int]:
    """Every provider's settlement of its messages a crash left ``unknown``
    (:meth:`Provider.settle_unknown`), whichever provider sends now: how many each one failed, by
    its title ("SendGrid"), only those that failed any."""
    settled: dict[str, int] = {}
    for provider in PROVIDERS:
        count = provider.settle_unknown(engine, now, grace_hours)
        if count:
            settled[provider.title] = count
    return settled


def event_webhooks(settings: Settings) -> list[EventWebhook]:
    """The ESP event webhooks `drip serve` mounts, whichever provider sends now (events of mail an
    earlier provider sent still arrive). :class:`ConfigError` for a key setting that is not one."""
    from dripengine.providers.sendgrid.webhook import SendGridEvents

    return [SendGridEvents(settings.webhooks)]


def inbound_webhooks(settings: Settings) -> list[InboundWebhook]:
    """The ESP inbound routes (replies) `drip serve` mounts."""
    from dripengine.providers.sendgrid.inbound import InboundParse

    return [InboundParse(settings.webhooks.inbound_max_spam_score)]


def event_parser(name: str) -> Callable[[Any], IncomingEvent]:
    """How one event of ``name``'s (one of :data:`EVENT_FORMATS`) reads, as its webhook reads it:
    :class:`~dripengine.providers.webhook.BadEvent` when it does not."""
    if name != "sendgrid":
        raise ConfigError(f"no event format {name!r}: one of {', '.join(EVENT_FORMATS)}")
    from dripengine.providers.sendgrid.events import parse_event

    return parse_event
