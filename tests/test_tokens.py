import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.exceptions import ConfigError
from dripengine.tokens import BadToken, sign, unsign

SECRET = "s3cret-key-for-tests-only"


@given(st.text(min_size=1, max_size=80))
def test_round_trip(value: str) -> None:
    assert unsign(SECRET, "unsubscribe", sign(SECRET, "unsubscribe", value)) == value


def test_tampering_purpose_and_key_are_refused() -> None:
    token = sign(SECRET, "unsubscribe", "msg-123")
    payload, signature = token.split(".")
    forged = sign(SECRET, "unsubscribe", "msg-124").split(".")[0] + "." + signature
    for bad in (forged, payload, token[:-2], "x.y", "", "%%%.***"):
        with pytest.raises(BadToken):
            unsign(SECRET, "unsubscribe", bad)
    with pytest.raises(BadToken):
        unsign(SECRET, "click", token)
    with pytest.raises(BadToken):
        unsign("another-secret-key-123", "unsubscribe", token)
    assert "msg-123" not in token  # opaque enough not to show the id in plain text


def test_missing_secret_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="DRIP_SECRET_KEY"):
        sign(None, "unsubscribe", "x")


def test_every_one_character_change_is_refused() -> None:
    """Base64 forgives unused trailing bits; the token does not."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.!"
    for value in ("a" * 32, "b" * 31, "c" * 33):
        token = sign(SECRET, "open", value)
        for index, original in enumerate(token):
            for char in alphabet:
                if char == original:
                    continue
                with pytest.raises(BadToken):
                    unsign(SECRET, "open", token[:index] + char + token[index + 1 :])
