"""What SendGrid's ``POST /v3/mail/send`` answers to a request: pure rules, no I/O.

``validate(method, path, headers, body, api_key=…, now=…)`` gives the :class:`Answer` SendGrid
documents for a request, from its method, path, headers and body alone; the stand-in's server
(:mod:`dripengine.testing.sendgrid_standin`) only moves bytes and adds what a test asks for
(faults, latency). The rules and their messages follow SendGrid's documentation:

- API reference: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
- Errors (400 ``{"errors": [{"message", "field", "help"}]}``):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
- Limitations (30 MB, 1,000 recipients, custom args < 10,000 bytes, no ``;``/``,`` in names):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/limitations
- Rate limits (429 with ``X-RateLimit-Limit``/``-Remaining``/``-Reset``):
  https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits
"""

from __future__ import annotations

import http
import json
import math
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = (
    30 * 1024 * 1024
)  # "The total size of your email, including attachments, must be less than 30MB."
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000  # "must be less than 10000 bytes", per personalization after merging
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_SEND_AT_AHEAD = 72 * 3600
ERRORS_URL = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"
# The `headers` parameter of mail/send: "You may not overwrite the following reserved headers:
# x-sg-id, x-sg-eid, received, dkim-signature, Content-Type, Content-Transfer-Encoding, To, From,
# Subject, Reply-To, CC, BCC" (SendGrid's v3 mail/send reference, repeated in the docstring of the
# official library's sendgrid/helpers/mail/header.py). Message-ID is not on the list.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"
NOT_ALLOWED = frozenset({"GET", "PUT", "DELETE", "PATCH"})  # 405; any other method but POST: 501
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Answer:
    """What to answer: status, headers and body; ``close`` ends the connection after it."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    close: bool = False
    payload: dict[str, Any] | None = None  # the accepted request's JSON (202 only): to record

    @property
    def message_id(self) -> str | None:
        """The ``X-Message-Id`` of an accepted request."""
        return self.headers.get("X-Message-Id")

    def errors(self) -> list[dict[str, Any]]:
        """The ``errors`` array of the body (SendGrid's error shape), or ``[]``."""
        return list(orjson.loads(self.body)["errors"]) if self.body else []


def validate(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    api_key: str,
    now: float,
) -> Answer:
    """SendGrid's answer to one request. ``body`` None: it was over :data:`MAX_BODY_BYTES` (a
    server stops keeping the bytes past the limit); ``now``: Unix seconds, for ``send_at``."""
    return check_head(method, path, headers, api_key=api_key) or check_body(body, now=now)


def check_head(
    method: str, path: str, headers: Mapping[str, str], *, api_key: str
) -> Answer | None:
    """The answer a request gets from its method, path and key alone; None when it goes on to
    :func:`check_body`. ``path`` may carry a query string; header names in any case."""
    if method != "POST":
        if method in NOT_ALLOWED:
            return error_answer(405, "Method Not Allowed")
        if method == "HEAD":  # an answer to HEAD has no body
            return Answer(501, close=True)
        return error_answer(501, "Not Implemented", close=True)
    if path.split("?", 1)[0] != SEND_PATH:
        return error_answer(404, "Not Found")
    if _header(headers, "authorization").strip() != f"Bearer {api_key}":
        return error_answer(401, UNAUTHORIZED)
    return None


def check_body(body: bytes | None, *, now: float) -> Answer:
    """The answer to a ``POST /v3/mail/send`` whose head passed: 413, 400 or 202."""
    if body is None or len(body) > MAX_BODY_BYTES:
        return error_answer(413, "Payload Too Large", close=True)
    try:  # orjson, like SendGrid, refuses what is not JSON: NaN, Infinity, invalid UTF-8
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return error_answer(400, "Bad Request")
    errors = check_payload(payload, now)
    if errors:
        return Answer(400, _JSON, orjson.dumps({"errors": errors}))
    return Answer(202, {"X-Message-Id": new_message_id()}, payload=payload)


def new_message_id() -> str:
    """A fresh ``X-Message-Id``: 22 URL-safe characters, as SendGrid's are."""
    return secrets.token_urlsafe(16)


def rate_limited(*, retry_after: float, limit: int, header: bool, now: float) -> Answer:
    """A 429 as SendGrid sends it: ``X-RateLimit-*``, and ``Retry-After`` when ``header``."""
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(now + retry_after)),
    }
    if header:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return error_answer(429, "too many requests", headers)


def server_error(status: int) -> Answer:
    """A 5xx in SendGrid's error shape."""
    return error_answer(status, "Internal Server Error" if status == 500 else _reason(status))


def error_answer(
    status: int, message: str, headers: Mapping[str, str] | None = None, *, close: bool = False
) -> Answer:
    """``status`` with one error (no field) in SendGrid's shape."""
    body = orjson.dumps({"errors": [_error(message, None)]})
    return Answer(status, {**(headers or {}), **_JSON}, body, close=close)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value


def _error(message: str, field: str | None) -> dict[str, Any]:
    anchor = (field or "").split(".")[0]
    return {"message": message, "field": field, "help": f"{ERRORS_URL}#{anchor}" if field else None}


def check_payload(payload: Any, now: float) -> list[dict[str, Any]]:
    """SendGrid's documented request rules for ``payload``; one error dict per broken rule."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    errors += _check_personalizations(payload, now)
    errors += _check_from_subject_content(payload)
    errors += _check_custom_args(payload)
    errors += _check_categories(payload.get("categories"))
    errors += _check_headers(payload.get("headers"), "headers")
    errors += _check_send_at(payload.get("send_at"), "send_at", now)
    if "reply_to" in payload and "reply_to_list" in payload:
        errors.append(
            _error("The reply_to and reply_to_list fields are mutually exclusive.", "reply_to")
        )
    return errors


def _check_personalizations(payload: dict[str, Any], now: float) -> Iterator[dict[str, Any]]:
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        yield _error("You must have at least one personalization.", "personalizations")
        return
    if len(personalizations) > MAX_PERSONALIZATIONS:
        yield _error(
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations per "
            f"API request. You have provided {len(personalizations)} personalizations. Please "
            "consider splitting this into multiple requests and resending your request.",
            "personalizations",
        )
    seen: set[str] = set()
    total = 0
    for i, personalization in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(personalization, dict):
            yield _error("Bad Request", where)
            continue
        if not personalization.get("to"):
            yield _error(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"{where}.to",
            )
        for kind in ("to", "cc", "bcc"):
            for j, recipient in enumerate(personalization.get(kind) or []):
                total += 1
                field = f"{where}.{kind}.{j}"
                address = recipient.get("email") if isinstance(recipient, dict) else None
                if not isinstance(address, str) or not _ADDRESS.match(address):
                    yield _error("Does not contain a valid address.", f"{field}.email")
                    continue
                if address.lower() in seen:
                    yield _error(
                        "Each unique email address in the personalizations array should only be "
                        f"included once. You have included {address} more than once.",
                        f"{field}.email",
                    )
                seen.add(address.lower())
                name = recipient.get("name")
                if isinstance(name, str) and (";" in name or "," in name) and not _quoted(name):
                    yield _error(
                        "The to.name, cc.name, and bcc.name personalizations cannot include "
                        "either the ; or , characters.",
                        f"{field}.name",
                    )
        yield from _check_headers(personalization.get("headers"), f"{where}.headers")
        yield from _check_send_at(personalization.get("send_at"), f"{where}.send_at", now)
    if total > MAX_RECIPIENTS:
        yield _error(
            f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.",
            "personalizations",
        )


def _quoted(name: str) -> bool:  # the work-around django-anymail uses: a quoted display name
    return len(name) >= 2 and name.startswith('"') and name.endswith('"')


def _check_from_subject_content(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sender = payload.get("from")
    address = sender.get("email") if isinstance(sender, dict) else None
    if not address:
        yield _error(
            "The from object must be provided for every email send. It is an object that "
            "requires the email parameter, but may also contain a name parameter.",
            "from.email",
        )
    elif not isinstance(address, str) or not _ADDRESS.match(address):
        yield _error("The from email does not contain a valid address.", "from.email")
    templated = bool(payload.get("template_id"))
    personalizations = [p for p in payload.get("personalizations") or [] if isinstance(p, dict)]
    has_subject = _text(payload.get("subject")) or (
        bool(personalizations) and all(_text(p.get("subject")) for p in personalizations)
    )
    if not has_subject and not templated:
        yield _error(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.",
            "subject",
        )
    content = payload.get("content")
    if not content:
        if not templated:
            yield _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        return
    if not isinstance(content, list):
        yield _error("Bad Request", "content")
        return
    types: list[str] = []
    for i, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        if not _text(block.get("type")):
            yield _error(
                "The content type must be a string at least one character in length.",
                f"content.{i}.type",
            )
        if not _text(block.get("value")):
            yield _error(
                "The content value must be a string at least one character in length.",
                f"content.{i}.value",
            )
        types.append(str(block.get("type", "")).lower())
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected)] != expected:
        yield _error(
            "If present, text/plain and text/html may only be provided in order, following the "
            "order text/plain, text/html, then any other content.",
            "content",
        )


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_custom_args(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    top = payload.get("custom_args") or {}
    yield from _string_values(top, "custom_args")
    for i, personalization in enumerate(payload.get("personalizations") or []):
        if not isinstance(personalization, dict):
            continue
        own = personalization.get("custom_args") or {}
        yield from _string_values(own, f"personalizations.{i}.custom_args")
        if isinstance(top, dict) and isinstance(own, dict):
            merged = {**top, **own}
            size = len(json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode())
            if size >= MAX_CUSTOM_ARGS_BYTES:
                yield _error(
                    f"The custom_args parameter is limited to less than {MAX_CUSTOM_ARGS_BYTES} "
                    f"bytes per personalization (merged: {size} bytes).",
                    f"personalizations.{i}.custom_args",
                )


def _string_values(mapping: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(mapping, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for key, value in mapping.items():
        if not isinstance(value, str):
            yield _error(
                f"Invalid type. Expected: string, given: {type(value).__name__}.", f"{where}.{key}"
            )


def _check_categories(categories: Any) -> Iterator[dict[str, Any]]:
    if categories is None:
        return
    if not isinstance(categories, list):
        yield _error("Invalid type. Expected: array.", "categories")
        return
    if len(categories) > MAX_CATEGORIES:
        yield _error(
            f"You cannot have more than {MAX_CATEGORIES} categories associated with an email.",
            "categories",
        )
    for i, category in enumerate(categories):
        if not isinstance(category, str):
            yield _error("Invalid type. Expected: string.", f"categories.{i}")
        elif len(category) > MAX_CATEGORY_CHARS:
            yield _error(
                f"A category cannot be more than {MAX_CATEGORY_CHARS} characters.",
                f"categories.{i}",
            )


def _check_headers(headers: Any, where: str) -> Iterator[dict[str, Any]]:
    if headers is None:
        return
    if not isinstance(headers, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            yield _error(f"{name} is a reserved header and cannot be set.", f"{where}.{name}")
        elif not isinstance(value, str):
            yield _error("Invalid type. Expected: string.", f"{where}.{name}")


def _check_send_at(send_at: Any, where: str, now: float) -> Iterator[dict[str, Any]]:
    if send_at is None:
        return
    if not isinstance(send_at, int) or isinstance(send_at, bool):
        yield _error("Invalid type. Expected: integer (a Unix timestamp).", where)
    elif send_at > now + MAX_SEND_AT_AHEAD:
        yield _error("send_at cannot be scheduled more than 72 hours in advance.", where)
