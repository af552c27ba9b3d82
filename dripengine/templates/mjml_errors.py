"""What went wrong in MJML's compile, at the file and line a template's author wrote it.

The resolved source the compile sees is pieces of several files; these functions map a problem
back: MJML's own rules (:mod:`~dripengine.templates.mjml_rules`) located by the unique text
around the tag, an MJML tag left unclosed, and a Jinja placeholder that MJML dropped (it sat in a
size attribute) or copied (an attribute MJML repeats), named by its attribute and element.
"""

from __future__ import annotations

import re

from dripengine.templates import mjml_rules
from dripengine.templates.errors import TemplateError
from dripengine.templates.protect import PREFIX, Registry
from dripengine.templates.structure import Structure

__all__ = ["check_mjml", "check_survivors", "unbalanced"]

_MJ_TAG = re.compile(r"<(/?)(mj-[\w-]+|mjml)\b[^>]*?(/?)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w-]+)\s*=\s*[\"'][^\"']*$")
_VOID_ENDINGS = ("mj-all", "mj-class", "mj-breakpoint", "mj-font", "mj-include")


def check_survivors(registry: Registry, resolved: str, html: str, shown: str) -> None:
    expected: dict[int, int] = {}
    for index in registry.indices(resolved):
        expected[index] = expected.get(index, 0) + 1
    found: dict[int, int] = {}
    for index in registry.indices(html):
        found[index] = found.get(index, 0) + 1
    for index, count in expected.items():
        token = registry.tokens[index]
        got = found.get(index, 0)
        if got >= 1 and (token.kind != "block" or got == count):
            continue
        where = _attribute_of(resolved, index)
        place = f" in the {where}" if where else ""
        if got == 0:
            raise TemplateError(
                token.file or shown,
                token.line,
                f"{token.text}{place} is lost when MJML compiles: MJML computes the layout from "
                "size attributes (width, padding, …), so write a fixed value there",
            )
        raise TemplateError(
            token.file or shown,
            token.line,
            f"{token.text}{place} comes out {got} times when MJML compiles (MJML copies that "
            "attribute); put the {% %} tag around the whole element instead",
        )


def _attribute_of(resolved: str, index: int) -> str | None:
    """``width attribute of <mj-column>`` when the placeholder sits inside an MJML tag."""
    position = resolved.find(f"{PREFIX}{index}q")
    start = resolved.rfind("<", 0, position)
    if position < 0 or start < 0 or ">" in resolved[start:position]:
        return None
    segment = resolved[start:position]
    element = re.match(r"<([\w-]+)", segment)
    attribute = _ATTRIBUTE.search(segment)
    if element is None or attribute is None:
        return None
    return f"{attribute.group(1)} attribute of <{element.group(1)}>"


def check_mjml(structure: Structure, name: str, resolved: str) -> None:
    """MJML's own rules (:mod:`.mjml_rules`): every problem, each at its file and line."""
    found = mjml_rules.problems(resolved)
    if not found:
        return
    errors = [TemplateError(*_locate(structure, name, resolved, p), p.message) for p in found]
    first = errors[0]
    first.others = errors[1:]
    raise first


def _locate(
    structure: Structure, name: str, resolved: str, problem: mjml_rules.Problem
) -> tuple[str, int]:
    """The file and line of a start tag found in the resolved source. The resolved source is
    pieces of the files' own text, so the tag with as much of the text before it as still lies
    in one piece is found in exactly one file: the longest such window that is unique wins."""
    end = problem.position + len(problem.tag_text)
    for before in (160, 80, 40, 20, 10, 0):
        window = resolved[max(0, problem.position - before) : end]
        hits = [
            (file_name, protected, at)
            for file_name, protected in structure.protected.items()
            for at in [protected.text.find(window)]
            if at >= 0
        ]
        unique = len(hits) == 1 and hits[0][1].text.count(window) == 1
        if unique or (before == 0 and hits):
            hits.sort(key=lambda hit: hit[0] != name)  # ambiguous to the end: the step's own
            file_name, protected, at = hits[0]
            at += problem.position - max(0, problem.position - before)
            line = protected.source_line(protected.text.count("\n", 0, at) + 1)
            return structure.shown(file_name), line
    return structure.shown(name), 1


def unbalanced(structure: Structure, name: str) -> tuple[str, int | None]:
    """The first file and line where an MJML tag is not closed, else the step template's line 1."""
    for file_name, protected in structure.protected.items():
        stack: list[tuple[str, int]] = []
        text = protected.text
        for match in _MJ_TAG.finditer(text):
            closing, tag, self_closing = match.groups()
            line = protected.source_line(text.count("\n", 0, match.start()) + 1)
            if self_closing or (tag.lower() in _VOID_ENDINGS and not closing):
                continue
            if not closing:
                stack.append((tag.lower(), line))
            elif stack and stack[-1][0] == tag.lower():
                stack.pop()
            else:
                return structure.shown(file_name), line
        if stack and file_name == name:
            return structure.shown(file_name), stack[-1][1]
    return structure.shown(name), 1
