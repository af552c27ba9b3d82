"""YAML text to a :class:`YAMLDocument`: its data, the line of every key, its duplicate keys.

The text is composed into nodes with :class:`~dripengine.yamlfile.dialect.StrictYAMLLoader`, held
to the alias budget, walked for the line of every key, then constructed. A file that cannot be
parsed is one problem, ``file:line: invalid YAML: ...``, in our words with the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dripengine.yamlfile.aliases import alias_budget
from dripengine.yamlfile.dialect import StrictYAMLLoader
from dripengine.yamlfile.explain import kind
from dripengine.yamlfile.locations import Loc, format_loc, line_for, walk

__all__ = ["YAMLDocument", "in_our_words", "parse_yaml", "read_yaml"]


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
        too_many = alias_budget(loader.alias_uses, shown)
        if too_many:
            return None, [too_many]
        lines: dict[Loc, int] = {(): 1}
        # before construction: PyYAML folds merge keys into the mapping nodes as it builds
        problems = walk(node, (), lines, set()) if node is not None else []
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
