"""Signed, opaque tokens for public links (unsubscribe, tracking): never a row id in a URL.

A token is ``<payload>.<signature>``, both URL-safe base64 without padding; the signature is an
HMAC-SHA256 over a purpose string and the payload, so an unsubscribe token cannot be replayed as a
click token. Verification uses a constant-time comparison.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from dripengine.exceptions import ConfigError, DripError


class BadToken(DripError):
    """The link is not valid (it was changed or cut short)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: str | None) -> bytes:
    if not secret:
        raise ConfigError(
            "sender.secret_key is not set: links in emails must be signed "
            "(set DRIP_SECRET_KEY or secret_key in [sender] of drip.toml; `drip init` writes one)"
        )
    return secret.encode("utf-8")


def sign(secret: str | None, purpose: str, value: str) -> str:
    payload = value.encode("utf-8")
    mac = hmac.new(_key(secret), purpose.encode() + b"\0" + payload, hashlib.sha256).digest()[:18]
    return f"{_b64(payload)}.{_b64(mac)}"


def unsign(secret: str | None, purpose: str, token: str) -> str:
    try:
        encoded, _, signature = token.partition(".")
        payload = _unb64(encoded)
        given = _unb64(signature)
    except (ValueError, UnicodeError):
        raise BadToken() from None
    # base64 decoding forgives unused trailing bits and stray characters: only the one canonical
    # spelling of a token is valid, so a token changed by one character is always refused
    if _b64(payload) != encoded or _b64(given) != signature:
        raise BadToken()
    expected = hmac.new(_key(secret), purpose.encode() + b"\0" + payload, hashlib.sha256).digest()[
        :18
    ]
    if not hmac.compare_digest(given, expected):
        raise BadToken()
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadToken() from None
