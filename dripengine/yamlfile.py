"""A YAML file parsed with the line of every key, and pydantic errors explained against a model.

YAML is parsed into nodes first so each mapping key and sequence item keeps its line; pydantic's
error locations are then mapped back onto those lines (a missing field falls back to its parent).
The YAML dialect is YAML 1.1 without its traps: ``on``/``no``/``yes`` stay text (``exit.on``, the
country ``NO``) and ``17:00`` stays a time instead of becoming the number 1020.

Every problem comes out as one line, ``file:line: field: message``.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "Loc",
    "StrictYAMLLoader",
    "YAMLDocument",
    "explain",
    "format_loc",
    "kind",
    "line_for",
    "parse_yaml",
    "read_yaml",
    "show",
    "validate",
]

Loc = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes, ``("tracks", "cold", "steps", 2)``."""

M = TypeVar("M", bound=BaseModel)


def format_loc(loc: Loc) -> str:
    """``("tracks", "cold", "steps", 2, "wait")`` -> ``tracks.cold.steps[2].wait``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# --- the YAML dialect ------------------------------------------------------------------------


MAX_VALUES = 20_000
"""How many values a file may hold once its aliases are expanded: a campaign has a few hundred,
a "billion laughs" file of nested aliases billions (it took 1.18 GB before this limit)."""


class StrictYAMLLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no base-60 numbers; remembers where aliases are used."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_uses: list[tuple[int, yaml.Node]] = []

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        line = self.peek_event().start_mark.line + 1 if self.check_event(yaml.AliasEvent) else 0
        node = super().compose_node(parent, index)
        if line and node is not None:
            self.alias_uses.append((line, node))
        return node

    yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag
            not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


# --- parsing ---------------------------------------------------------------------------------


@dataclass
class YAMLDocument:
    """A parsed file: its data, the line of every key and item, and its duplicate keys."""

    shown: str
    """The file's name as messages show it (``campaigns/x.yaml``)."""
    data: dict[str, Any]
    lines: dict[Loc, int]
    problems: list[tuple[int, str]] = field(default_factory=list)
    """``(line, "field: message")`` found while parsing (duplicate keys); they make it invalid."""

    def line_for(self, loc: Loc) -> int:
        return line_for(loc, self.lines)

    def error(self, loc: Loc, message: str) -> str:
        """``file:line: field: message`` for a problem found later (e.g. a reference check)."""
        return f"{self.shown}:{self.line_for(loc)}: {format_loc(loc) or 'file'}: {message}"


def read_yaml(
    path: Path, shown: str, *, needs: str, must_be: str
) -> tuple[YAMLDocument | None, list[str]]:
    """:func:`parse_yaml` on the file at ``path``; an unreadable file is one problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [f"{shown}:1: not UTF-8 text; save the file as UTF-8"]
    except OSError as exc:
        return None, [f"{shown}:1: cannot be read: {exc.strerror or exc}"]
    return parse_yaml(text, shown, needs=needs, must_be=must_be)


def parse_yaml(
    text: str, shown: str, *, needs: str, must_be: str
) -> tuple[YAMLDocument | None, list[str]]:
    """The mapping in ``text`` with the line of every key, or ``None`` and why not.

    ``needs`` finishes "the file is empty; ..." (``"a campaign needs at least id, name"``);
    ``must_be`` starts "..., not a list" (``"a campaign file must be a mapping of fields"``).
    """
    loader = StrictYAMLLoader(text)
    try:
        node = loader.get_single_node()
        too_many = _alias_budget(loader.alias_uses, shown)
        if too_many:
            return None, [too_many]
        lines: dict[Loc, int] = {(): 1}
        # before construction: PyYAML folds merge keys into the mapping nodes as it builds
        problems = _walk(node, (), lines, set()) if node is not None else []
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        return None, [f"{shown}:1: invalid YAML: nested too deeply; a campaign needs a few levels"]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "cannot be parsed"
        return None, [f"{shown}:{line}: invalid YAML: {in_our_words(problem)}"]
    except yaml.YAMLError as exc:
        return None, [f"{shown}:1: invalid YAML: {exc}"]
    finally:
        loader.dispose()
    if node is None or data is None:
        return None, [f"{shown}:1: the file is empty; {needs}"]
    if not isinstance(data, dict):
        return None, [f"{shown}:{node.start_mark.line + 1}: {must_be}, not {kind(data)}"]
    return YAMLDocument(shown, data, lines, problems), []


_OUR_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"mapping values are not allowed here"),
        "a colon where a value should be: put a value containing ': ' in quotes, "
        "or check this line's indentation",
    ),
    (
        re.compile(r"expected <block end>, but found"),
        "this line's indentation does not match the lines above it: indent each level with "
        "the same number of spaces",
    ),
    (re.compile(r"expected ',' or '\]'"), "a [ list is not closed with ]"),
    (re.compile(r"expected ',' or '\}'"), "a { mapping is not closed with }"),
    (
        re.compile(r"found unexpected end of stream"),
        "a quoted value is not closed: a \" or ' is missing",
    ),
    (
        re.compile(r"found character '\\t' that cannot start any token"),
        "a tab character: indent with spaces (YAML does not allow tabs)",
    ),
    (
        re.compile(r"found character '(.)' that cannot start any token"),
        "a value starts with {0!r}, which YAML reserves: put the value in quotes",
    ),
    (
        re.compile(r"found undefined alias '([^']*)'"),
        "*{0} refers to no anchor: define &{0} above it, or write the value out",
    ),
    (re.compile(r"could not find expected ':'"), "a line without its colon: write key: value"),
    (
        re.compile(r"expected the node content, but found '<stream end>'"),
        "the file ends inside a [ list or { mapping: close it",
    ),
    (
        re.compile(r"but found another document"),
        "a second document after ---: a file holds one (remove the ---)",
    ),
)


def in_our_words(problem: str) -> str:
    """PyYAML's problem as a person reads it, with the fix; its own text when we have no better."""
    for pattern, words in _OUR_WORDS:
        match = pattern.search(problem)
        if match:
            return words.format(*match.groups()) if match.groups() else words
    return f"cannot be read as YAML ({problem})"


def _alias_budget(uses: list[tuple[int, yaml.Node]], shown: str) -> str | None:
    """The problem when the file's aliases expand it past :data:`MAX_VALUES`, at the alias that
    crosses the line; ``None`` when it stays within (a few ``<<: *defaults`` always do)."""
    sizes: dict[int, int] = {}
    total = 0
    for line, node in uses:
        total += _size(node, sizes, set())
        if total > MAX_VALUES:
            return (
                f"{shown}:{line}: aliases expand this file past {MAX_VALUES:,} values "
                "(nested anchors and aliases); write the values out, or alias fewer levels"
            )
    return None


def _size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """The values under ``node`` with every alias expanded, each node counted once (memo)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if id(node) in active:  # a recursive alias: counted once, as construction shares it
        return 1
    active.add(id(node))
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _size(key, sizes, active) + _size(value, sizes, active)
            if total > MAX_VALUES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _size(item, sizes, active)
            if total > MAX_VALUES:
                break
    active.discard(id(node))
    sizes[id(node)] = total
    return total


def _walk(
    node: yaml.Node, path: Loc, lines: dict[Loc, int], active: set[int]
) -> list[tuple[int, str]]:
    """Record the line of every key and item under ``node``; report duplicate keys."""
    if id(node) in active:  # a recursive alias
        return []
    active = active | {id(node)}
    problems: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node, own in _pairs(node, active):
            key: str | int = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if own and child in lines:
                where = format_loc(child)
                problems.append(
                    (line, f"{where}: duplicate key (also on line {lines[child]}); keep one")
                )
            lines[child] = line
            problems += _walk(value_node, child, lines, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            problems += _walk(item, child, lines, active)
    return problems


MERGE_TAG = "tag:yaml.org,2002:merge"


def _pairs(node: yaml.MappingNode, active: set[int]) -> list[tuple[yaml.Node, yaml.Node, bool]]:
    """The mapping's ``(key, value, own)`` pairs as YAML's merge key resolves them: its own keys
    (duplicates too, to report), then each ``<<: *anchor`` key it does not set itself, earlier
    anchors first. Overriding a merged key is what merge keys are for, not a duplicate."""
    own = [(k, v, True) for k, v in node.value if k.tag != MERGE_TAG]
    seen = {str(k.value) for k, _, _ in own if isinstance(k, yaml.ScalarNode)}
    merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
    for key, value in node.value:
        if key.tag != MERGE_TAG:
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode) or id(source) in active:
                continue  # not a mapping: construction reports it; a merge of itself: nothing
            for k, v, _ in _pairs(source, active | {id(source)}):
                name = str(k.value) if isinstance(k, yaml.ScalarNode) else None
                if name is None or name not in seen:
                    merged.append((k, v, False))
                    if name is not None:
                        seen.add(name)
    return own + merged


def line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of ``loc``, or of its nearest parent that is in the file (1 at worst)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


# --- validating ------------------------------------------------------------------------------


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


# --- pydantic's errors as sentences ----------------------------------------------------------

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
        return f"unknown value {show(value)} (use {accepted})"
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
