"""Providers: one module each behind :class:`~dripengine.sending.providers.base.Provider`."""

from __future__ import annotations

from dripengine.config import Settings
from dripengine.exceptions import ConfigError
from dripengine.sending.providers.base import Provider, SendResult
from dripengine.sending.providers.outbox import OutboxProvider
from dripengine.sending.providers.sendgrid import DEFAULT_HOST, SendGridProvider
from dripengine.sending.providers.smtp import SMTPProvider

__all__ = [
    "OutboxProvider",
    "Provider",
    "SMTPProvider",
    "SendGridProvider",
    "SendResult",
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
