"""Jinja through the MJML compile: swap every tag for an inert placeholder, put it back afterwards.

MRML (mjml-python) keeps most Jinja byte for byte, but not all of it: a ``<`` inside ``{% %}`` is a
compile error, double quotes inside a single-quoted attribute come out backslash-escaped, and an
expression in a size attribute (``mj-column width``) is dropped. So nothing Jinja reaches MRML: each
``{{ … }}`` and ``{% … %}`` (a ``{% raw %}…{% endraw %}`` block as one piece) becomes a token such
as ``zqjdjn12q`` (letters and digits only, which MRML, CSS and the text converter leave alone), and
``{# … #}`` comments are dropped. A :class:`Registry` remembers each token's text, kind, file and
line, so an error found after the compile still names ``templates/x.mjml:12``.

The scanner follows Jinja's own lexer where it matters: string literals (with backslash escapes)
and brackets inside a tag do not end it, so ``{{ {'a': 1} }}`` and ``{{ "%}" }}`` are one tag each.
Tags that shape the source (``extends``, ``block``, ``endblock``, ``include``, ``{{ super() }}``)
can be left live for the structure pass; see :mod:`dripengine.templates.compile`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["expr", "block", "comment"]

PREFIX = "zqjdjn"
"""Every placeholder starts with this; a source that contains it is refused."""
PLACEHOLDER = re.compile(PREFIX + r"(\d+)q")
_CLOSE = {"{{": "}}", "{%": "%}"}
_RAW_END = re.compile(r"\{%-?\s*endraw\s*[-+]?%\}")
_TAG_NAME = re.compile(r"\{%[-+]?\s*(\w+)")
STRUCTURE_TAGS = frozenset({"extends", "block", "endblock", "include"})
_SUPER = re.compile(r"\{\{-?\s*super\(\)\s*-?\}\}")


class UnclosedTag(ValueError):
    """A Jinja tag opens and never closes."""

    def __init__(self, position: int, opener: str) -> None:
        self.position = position
        self.opener = opener
        super().__init__(f"{opener} is never closed")


@dataclass(frozen=True)
class Span:
    """One Jinja tag in a source: ``source[start:end]``."""

    start: int
    end: int
    kind: Kind


def _tag_end(source: str, position: int, close: str) -> int:
    """The index just past the tag's closing delimiter; ``position`` is just past the opener."""
    depth = 0
    quote = ""
    i = position
    length = len(source)
    while i < length:
        char = source[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif depth == 0 and source.startswith(close, i):
            return i + len(close)
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth > 0:
            depth -= 1
        i += 1
    raise UnclosedTag(position - 2, source[position - 2 : position])


def scan(source: str) -> Iterator[Span]:
    """Every Jinja tag in ``source``, in order. Raises :class:`UnclosedTag`."""
    i = 0
    while True:
        j = source.find("{", i)
        if j < 0 or j + 1 >= len(source):
            return
        opener = source[j : j + 2]
        if opener == "{#":
            k = source.find("#}", j + 2)
            if k < 0:
                raise UnclosedTag(j, opener)
            yield Span(j, k + 2, "comment")
            i = k + 2
        elif opener in _CLOSE:
            end = _tag_end(source, j + 2, _CLOSE[opener])
            if opener == "{%" and tag_name(source[j:end]) == "raw":
                match = _RAW_END.search(source, end)
                if match is None:
                    raise UnclosedTag(j, "{% raw %}")
                end = match.end()
            yield Span(j, end, "expr" if opener == "{{" else "block")
            i = end
        else:
            i = j + 1


def tag_name(tag: str) -> str | None:
    """``block`` for ``{%- block body %}``; None for an expression or a comment."""
    match = _TAG_NAME.match(tag)
    return match.group(1) if match else None


def is_structure(tag: str) -> bool:
    """Whether the tag shapes the source (layout, blocks, includes) rather than the lead's email."""
    return tag_name(tag) in STRUCTURE_TAGS or _SUPER.fullmatch(tag) is not None


@dataclass(frozen=True)
class Token:
    """One protected Jinja tag: its text, its kind, and where it came from (``line`` from 1)."""

    text: str
    kind: Kind
    file: str | None = None
    line: int | None = None


@dataclass
class Protected:
    """A source with its tags swapped out; ``line_map[k]`` is the source line of line ``k + 1``."""

    text: str
    line_map: list[int]

    def source_line(self, line: int) -> int:
        return self.line_map[min(max(line, 1), len(self.line_map)) - 1]


@dataclass
class Registry:
    """The tokens of one compile, shared by every file it reads (layout, partials, the step)."""

    tokens: list[Token] = field(default_factory=list)

    def placeholder(self, token: Token) -> str:
        self.tokens.append(token)
        return f"{PREFIX}{len(self.tokens) - 1}q"

    def protect(
        self,
        source: str,
        file: str | None = None,
        *,
        keep: Callable[[str], bool] = lambda tag: False,
    ) -> Protected:
        """``source`` with each tag swapped for a placeholder, except those ``keep`` accepts.

        Comments disappear. Raises :class:`UnclosedTag`, or ``ValueError`` if the source already
        contains the placeholder prefix.
        """
        if PREFIX in source:
            raise ValueError(f'contains "{PREFIX}", which dripengine reserves for itself')
        pieces: list[str] = []
        line_map: list[int] = []
        line = 1
        last = 0

        def data(text: str) -> None:
            nonlocal line
            pieces.append(text)
            for _ in range(text.count("\n")):
                line_map.append(line)
                line += 1

        for span in scan(source):
            data(source[last : span.start])
            tag = source[span.start : span.end]
            if span.kind == "comment":
                line += tag.count("\n")
            elif keep(tag):
                data(tag)
            else:
                pieces.append(self.placeholder(Token(tag, span.kind, file, line)))
                line += tag.count("\n")
            last = span.end
        data(source[last:])
        line_map.append(line)
        return Protected("".join(pieces), line_map)

    def restore(self, text: str) -> str:
        """Every placeholder in ``text`` back to its Jinja tag."""
        return PLACEHOLDER.sub(lambda m: self.tokens[int(m.group(1))].text, text)

    def restore_with_lines(self, text: str) -> tuple[str, dict[int, list[int]]]:
        """:meth:`restore`, plus which tokens sit on each line (from 1) of the result."""
        out: list[str] = []
        lines: dict[int, list[int]] = {}
        line = 1
        last = 0
        for match in PLACEHOLDER.finditer(text):
            before = text[last : match.start()]
            line += before.count("\n")
            index = int(match.group(1))
            tag = self.tokens[index].text
            for offset in range(tag.count("\n") + 1):
                lines.setdefault(line + offset, []).append(index)
            line += tag.count("\n")
            out += [before, tag]
            last = match.end()
        out.append(text[last:])
        return "".join(out), lines

    def indices(self, text: str) -> list[int]:
        """The token numbers of the placeholders in ``text``, in order."""
        return [int(m) for m in PLACEHOLDER.findall(text)]


_STRAY = re.compile(r"\{(?=[{%#])")


def escape_stray_delimiters(text: str) -> str:
    """Make a ``{{``, ``{%`` or ``{#`` that MJML produced (not ours) print as itself under Jinja."""
    return _STRAY.sub("{{ '{' }}", text)
