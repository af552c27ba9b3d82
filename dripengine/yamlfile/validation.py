"""A parsed YAML document validated as a pydantic model, every problem at its ``file:line``."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from dripengine.yamlfile.explain import explain
from dripengine.yamlfile.locations import format_loc, line_for
from dripengine.yamlfile.parse import YAMLDocument

__all__ = ["validate"]

M = TypeVar("M", bound=BaseModel)


def validate(
    document: YAMLDocument, model: type[M], *, unknown_first: bool = False
) -> tuple[M | None, list[str]]:
    """``document`` as a ``model``, or ``None`` and every problem as ``file:line: field: message``.

    Problems come in line order; with ``unknown_first`` unknown fields lead (a typo usually
    explains the "missing" field beside it, so it is the better first line to show).
    """
    located: list[tuple[bool, int, str]] = [
        (False, line, message) for line, message in document.problems
    ]
    value: M | None = None
    try:
        value = model.model_validate(document.data)
    except ValidationError as exc:
        unknown = {tuple(e["loc"]) for e in exc.errors() if e["type"] == "extra_forbidden"}
        located += [
            (
                unknown_first and loc in unknown,
                line_for(loc, document.lines),
                f"{format_loc(loc) or 'file'}: {message}",
            )
            for loc, message in explain(exc, model)
        ]
    if value is None or located:
        ordered = sorted(located, key=lambda item: (not item[0], item[1], item[2]))
        return None, [f"{document.shown}:{line}: {message}" for _, line, message in ordered]
    return value, []
