"""Event files for `drip events ingest`: a JSON array, or NDJSON (one event a line). Pure.

Each item comes with the line it starts on, so a bad one is reported as ``FILE:LINE: reason``
while the others are kept. A JSON array is read item by item (``raw_decode``), so one bad
item does not lose the rest unless the file's JSON itself is broken.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class Item:
    line: int  # from 1
    value: Any = None
    error: str | None = None  # the line is not JSON (value is None)


def read_items(text: str) -> Iterator[Item]:
    """The items of ``text``: an array's elements, or each non-blank NDJSON line."""
    start = _skip(text, 0)
    if start < len(text) and text[start] == "[":
        yield from _array(text, start)
    else:
        yield from _lines(text)


def _lines(text: str) -> Iterator[Item]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Item(number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield Item(number, error=f"not JSON: {exc.msg} (column {exc.colno})")


def _array(text: str, start: int) -> Iterator[Item]:
    position = _skip(text, start + 1)
    if position < len(text) and text[position] == "]":
        return
    while True:
        line = text.count("\n", 0, position) + 1
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            yield Item(
                exc.lineno,
                error=f"not JSON: {exc.msg} (column {exc.colno}); rest of the file not read",
            )
            return
        yield Item(line, value)
        position = _skip(text, position)
        if position < len(text) and text[position] == ",":
            position = _skip(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            return
        line = text.count("\n", 0, position) + 1
        yield Item(line, error="expected , or ] after an event; rest of the file not read")
        return


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _SPACE:
        position += 1
    return position
