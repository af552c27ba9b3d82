"""Email addresses in the one form dripengine stores and compares.

:func:`normalise_email` checks syntax only (never DNS) with ``email-validator`` and returns the
address as that library normalises it (the domain lower-cased and IDNA-normalised to its Unicode
form, the local part NFC-normalised), then lower-cased as a whole. dripengine treats addresses
case-insensitively: ``Jane.Doe@Acme.example`` and ``jane.doe@acme.example`` are one lead. (RFC 5321
lets a server treat local parts case-sensitively; no mailbox provider in practice does, and two
leads that differ only in case are a duplicate, not two people.)

Speed: ``validate_email`` costs ~28 µs an address, mostly in domain validation, and lead lists
repeat a few thousand domains. So the domain check is cached (through the public
``validate_email`` on ``postmaster@<domain>``), and a plain ASCII dot-atom local part within the
RFC limits takes a fast path; everything else goes through ``validate_email`` itself. The fast path
accepts a strict subset of what ``validate_email`` accepts and produces the same result;
``tests/test_emails.py`` checks that with hypothesis.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from dripengine.exceptions import DripError

__all__ = ["InvalidEmail", "normalise_email"]

# RFC 5322 dot-atom with ASCII atext only: exactly email-validator's DOT_ATOM_TEXT.
_LOCAL_FAST = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
LOCAL_PART_MAX_LENGTH = 64  # RFC 5321 4.5.3.1.1 (email-validator checks it only when strict)
EMAIL_MAX_LENGTH = 254  # RFC 3696 errata 1690, in UTF-8 octets
DOMAIN_CACHE_SIZE = 65_536


class InvalidEmail(DripError, ValueError):
    """That is not a valid email address."""


class _Domain(NamedTuple):
    normalised: str  # email-validator's normalised (Unicode) form
    longest: int  # the longest of the given, normalised and IDNA ASCII forms, in UTF-8 octets


def normalise_email(raw: str) -> str:
    """The normalised, lower-cased form of ``raw``; :class:`InvalidEmail` if it is not valid.

    Surrounding whitespace is stripped first. The message of the exception is email-validator's
    own, e.g. "An email address cannot have two periods in a row."
    """
    address = raw.strip()
    local, at, domain_part = address.partition("@")
    if (
        at
        and len(local) <= LOCAL_PART_MAX_LENGTH
        and _LOCAL_FAST.fullmatch(local) is not None
        and (domain := _lookup(domain_part)) is not None
        and len(local) + 1 + domain.longest <= EMAIL_MAX_LENGTH
    ):
        return f"{local}@{domain.normalised}".lower()
    return _full(address)


def _full(address: str) -> str:
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return result.normalized.lower()


def _lookup(domain_part: str) -> _Domain | None:
    return _check_domain(domain_part.lower() if domain_part.isascii() else domain_part)


@lru_cache(maxsize=DOMAIN_CACHE_SIZE)
def _check_domain(domain_part: str) -> _Domain | None:
    """The domain as email-validator normalises it, or None if it is not valid.

    ``postmaster`` is a plain ASCII local part, so whether ``postmaster@<domain>`` is valid depends
    on the domain alone (its length limits included), and the domain's normalised forms are the
    ones any valid local part would get. An ASCII domain is looked up lower-cased (``Acme.COM`` and
    ``acme.com`` are one entry): for ASCII, case changes neither validity, length nor result.
    """
    try:
        result = validate_email(f"postmaster@{domain_part}", check_deliverability=False)
    except EmailNotValidError:
        return None
    longest = max(
        len(domain_part.encode()), len(result.domain.encode()), len(result.ascii_domain.encode())
    )
    return _Domain(result.domain, longest)
