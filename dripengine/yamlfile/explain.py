"""Pydantic's validation errors as sentences: ``(location, message)``, with the fix.

Types are named as a YAML author knows them (``a whole number``, ``a list (e.g. [a, b])``), an
unknown field suggests the close match or lists the fields the model accepts there, and a
validator's cross-field ``problems`` become problems of their own.
"""

from __future__ import annotations

import difflib
import json
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dripengine.suggest import closest
from dripengine.yamlfile.locations import Loc

__all__ = ["explain", "kind", "show"]

_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list (e.g. [a, b])",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def explain(exc: ValidationError, model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """``(location, message)`` for every problem, cross-field problems expanded.

    A validator may raise an error with a ``problems`` attribute, a list of ``(location,
    message)`` relative to where it was raised; each becomes a problem of its own.
    """
    explained: list[tuple[Loc, str]] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        problems = getattr(cause, "problems", None)
        if isinstance(problems, list):
            explained += [((*loc, *sub), message) for sub, message in problems]
        else:
            explained.append((loc, _message(error, loc, model)))
    return explained


def _message(error: ErrorDetails, loc: Loc, model: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return _unknown_field(loc, model)
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {show(value)}"
    if kind == "literal_error":
        accepted = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        meant = closest(value, accepted.split(", ")) if isinstance(value, str) else None
        hint = f'did you mean "{meant}"? ' if meant is not None and meant != value else ""
        return f"unknown value {show(value)} ({hint}use {accepted})"
    if kind in ("too_short", "string_too_short"):
        return "cannot be empty"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"must be {word} {bound}, got {show(value)}"
    return f"{error['msg']} (got {show(value)})"


def _unknown_field(loc: Loc, model: type[BaseModel]) -> str:
    known = _field_names(model, loc[:-1])
    name = str(loc[-1])
    if not known:
        return "unknown field"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f'unknown field (did you mean "{close[0]}"?)'
    return f"unknown field (use {', '.join(known)})"


def _field_names(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names the model at ``loc`` accepts (by their YAML spelling)."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if found is None:
                return []
            current = found.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _strip(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _strip(annotation: Any) -> Any:
    """Unwrap ``Annotated[X, ...]`` and ``X | None`` down to ``X``."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, _UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


_UnionType = type(int | None)


def show(value: Any) -> str:
    """A value as a message quotes it: ``"3 dayz"``, ``12``, ``true``, ``a list``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    return kind(value) if isinstance(value, (list, dict)) else repr(value)


def kind(value: Any) -> str:
    """What sort of YAML value this is, for "must be a mapping, not ..." messages."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a single value ({show(value)})"
