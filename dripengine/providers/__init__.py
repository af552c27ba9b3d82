"""Providers: one module each behind :class:`~dripengine.providers.base.Provider`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Engine

from dripengine.clock import Clock, FixedClock
from dripengine.config import Settings
from dripengine.exceptions import ConfigError
from dripengine.providers.base import Provider, SendResult
from dripengine.providers.outbox import OutboxProvider
from dripengine.providers.sendgrid.provider import DEFAULT_HOST, SendGridProvider
from dripengine.providers.smtp import SMTPProvider

__all__ = [
    "OutboxProvider",
    "Provider",
    "SMTPProvider",
    "SendGridProvider",
    "SendResult",
    "build_provider",
    "provider_from_settings",
]


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
    :mod:`dripengine.sending.ratelimit`). Call its ``check()`` before relying on it. With a
    :class:`FixedClock` (``drip --now``) waiting for tokens moves that clock instead of sleeping.
    """
    from dripengine.sending.ratelimit import RateLimitedProvider, sent_today_query

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
