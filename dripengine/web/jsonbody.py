"""Reading a JSON request body: strict, bounded, one message for whatever is wrong with it.

orjson parses (RFC 8259 strictly: UTF-8 only, no NaN, no lone surrogates; integers beyond 64 bits
refused instead of becoming 5,000-digit Python ints that a later ``int()`` or a database column
chokes on), then the nesting is held to :data:`MAX_DEPTH`: no payload we take is deeper than a
few levels, and a ``[[[[…]]]]`` thousands deep must not reach code that recurses over it.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 32


class NotJSON(ValueError):
    """The body is not JSON we take; the message says why, for a 400."""


def parse_json(raw: bytes | str) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotJSON(f"the body is not JSON: {_reason(exc)}") from None
    if isinstance(value, dict | list) and _too_deep(value):
        raise NotJSON(f"the body nests deeper than {MAX_DEPTH} levels")
    return value


def _too_deep(value: dict[str, Any] | list[Any]) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _reason(exc: orjson.JSONDecodeError) -> str:
    message = str(exc).split(": line ")[0]
    return message[:200]


__all__ = ["MAX_DEPTH", "NotJSON", "parse_json"]
