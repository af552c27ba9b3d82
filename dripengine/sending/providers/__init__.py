"""Providers: one module each behind :class:`~dripengine.sending.providers.base.Provider`."""

from __future__ import annotations

from dripengine.config import Settings
from dripengine.exceptions import ConfigError
from dripengine.sending.providers.base import Provider, SendResult
from dripengine.sending.providers.outbox import OutboxProvider

__all__ = ["OutboxProvider", "Provider", "SendResult", "provider_from_settings"]


def provider_from_settings(settings: Settings) -> Provider:
    name = settings.sending.provider
    if name == "outbox":
        return OutboxProvider(settings.outbox_dir)
    raise ConfigError(
        f'sending.provider "{name}" is not available in this version yet (the sending issue adds '
        'smtp and sendgrid); use "outbox" (DRIP_PROVIDER=outbox)'
    )
