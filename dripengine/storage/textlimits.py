"""What text the database takes, checked the same way at every edge, on SQLite and PostgreSQL alike.

PostgreSQL refuses a NUL character in any text or JSON value and a string longer than its
``VARCHAR(n)``; SQLite takes both without a word. Left to the database, the same CSV row, API call
or webhook batch worked on one and failed the whole transaction on the other. So every edge asks
here first, with the lengths read from the models' own columns (never a second copy of them):

- :func:`text_problem`: a NUL, a control character (tab and line breaks aside), or more
  characters than the column holds, named with the field and the fix ("note contains a NUL
  character; remove it"). Refused: a name with an escape character in it is not what anyone typed.
- :func:`json_problem`: a NUL anywhere in a JSON value (keys included).
- :func:`without_nul`: the same value with NULs removed, for evidence we keep but did not write
  (a provider's raw event payload, a reply's text): stripping keeps the rest of it, and a bounce
  whose reason carries a NUL still suppresses its address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

# C0 controls and DEL but tab, line feed and carriage return (a spreadsheet cell may hold a line
# break; what shows a value on one line makes it one line there)
_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


def column_limits(table: Table) -> dict[str, int]:
    """``{column: length}`` for the table's length-limited text columns."""
    limits: dict[str, int] = {}
    for column in table.columns:
        length = getattr(column.type, "length", None)
        if length:
            limits[column.name] = length
    return limits


def text_problem(name: str, value: str, limit: int | None = None) -> str | None:
    """Why ``value`` cannot be stored as ``name``, or None."""
    if value.isprintable():  # the common case, in C: no control character of any kind
        if limit is not None and len(value) > limit:
            return f"{name} is {len(value)} characters long; the limit is {limit}"
        return None
    if "\x00" in value:
        return f"{name} contains a NUL character; remove it"
    bad = _CONTROL.search(value)
    if bad is not None:
        return f"{name} contains a control character (0x{ord(bad.group()):02x}); remove it"
    if limit is not None and len(value) > limit:
        return f"{name} is {len(value)} characters long; the limit is {limit}"
    return None


def json_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON (a NUL in a string or a key), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"{name} contains a NUL character; remove it"
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string in it (keys included)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, Mapping):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


__all__ = ["column_limits", "json_problem", "text_problem", "without_nul"]
