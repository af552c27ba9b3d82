"""MJML's own rules for tags, attributes and nesting, checked before a template is compiled.

MRML (mjml-python) compiles what it does not know without a word: ``<mj-buton>`` and its call to
action vanish from the email, ``<mj-txt>`` loses its paragraph, a ``<div>`` straight inside
``<mj-column>`` is dropped, ``colour="red"`` is ignored. :func:`problems` finds each of these in a
template's resolved source, as MJML's own validator would, from MJML's own lists: the components,
their allowed attributes and the children each tag may hold, generated from the ``mjml`` npm
packages into ``mjml_spec.json`` (``scripts/mjml-spec/regenerate``), not typed by hand.

Checked: unknown tags (with the nearest known one), unknown attributes of a tag (nearest known
attribute), a tag where MJML does not allow it (and where it may go), and an ``enum`` attribute
whose literal value is not one of its values (``align="centre"``). Inside an ending tag
(``mj-text``, ``mj-button``, ``mj-table``, ``mj-raw``, …) the content is HTML and left alone, as
MJML leaves it; a value or attribute name that is a Jinja placeholder is not judged. Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

from dripengine.suggest import closest
from dripengine.templates.protect import PREFIX

_ENUM = re.compile(r"enum\((.*)\)")


@dataclass(frozen=True)
class Spec:
    source: str
    root: str
    root_attributes: dict[str, str]
    global_attributes: frozenset[str]
    componentless: frozenset[str]
    attributes: dict[str, dict[str, str]]  # tag -> attribute -> MJML type
    ending: frozenset[str]  # tags whose content is HTML, not MJML
    children: dict[str, tuple[str, ...]]  # tag -> the tags it may hold
    any_child: frozenset[str]  # tags that may hold any tag (mj-attributes)
    tags: frozenset[str]  # every tag MJML knows: the root, the components, the componentless

    def allows(self, parent: str, child: str) -> bool:
        return parent in self.any_child or child in self.children.get(parent, ())

    def parents_of(self, child: str) -> list[str]:
        return sorted(p for p, kids in self.children.items() if child in kids)


@cache
def spec() -> Spec:
    data: dict[str, Any] = json.loads(
        resources.files("dripengine.templates").joinpath("mjml_spec.json").read_text("utf-8")
    )
    root = data["root"]
    children = {
        tag: tuple(k for k in kids if isinstance(k, str)) for tag, kids in data["children"].items()
    }
    children[root["tag"]] = tuple(root["children"])
    return Spec(
        source=data["source"],
        root=root["tag"],
        root_attributes=dict.fromkeys(root["attributes"], "string"),
        global_attributes=frozenset(data["global_attributes"]),
        componentless=frozenset(data["componentless_tags"]),
        tags=frozenset({root["tag"], *data["components"], *data["componentless_tags"]}),
        attributes={tag: dict(c["attributes"]) for tag, c in data["components"].items()},
        ending=frozenset(tag for tag, c in data["components"].items() if c["ending_tag"]),
        children=children,
        any_child=frozenset(
            tag for tag, kids in data["children"].items() if any(isinstance(k, dict) for k in kids)
        ),
    )


@dataclass(frozen=True)
class Problem:
    tag_text: str  # the start tag as written
    position: int  # where it starts in the resolved source
    message: str


def problems(resolved: str) -> list[Problem]:
    """MJML's objections to ``resolved`` (a template with its includes and layout resolved and
    its Jinja tags as placeholders), in source order."""
    checker = _Checker(spec())
    starts = [0]
    for line in resolved.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    checker.line_starts = starts
    checker.feed(resolved)
    checker.close()
    return checker.found


class _Checker(HTMLParser):
    def __init__(self, rules: Spec) -> None:
        super().__init__(convert_charrefs=True)
        self.rules = rules
        self.stack: list[str] = []  # open MJML tags
        self.raw_depth = 0  # > 0: inside an ending tag's HTML content
        self.found: list[Problem] = []
        self.line_starts: list[int] = [0]

    # --- parser events ---------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closes=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closes=True)

    def handle_endtag(self, tag: str) -> None:
        if self.raw_depth:
            if tag == self.stack[-1]:
                self.raw_depth -= 1
                if not self.raw_depth:
                    self.stack.pop()
            return
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    # --- the rules -------------------------------------------------------------------------

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closes: bool) -> None:
        if self.raw_depth:
            if tag == self.stack[-1] and not closes:
                self.raw_depth += 1  # the same ending tag nested in its own content
            return
        text = self.get_starttag_text() or f"<{tag}>"
        line, column = self.getpos()
        position = self.line_starts[line - 1] + column

        def refuse(message: str) -> None:
            self.found.append(Problem(text, position, message))

        rules = self.rules
        parent = self.stack[-1] if self.stack else None
        known = tag in rules.tags
        if PREFIX in tag:
            return
        if not known:
            refuse(self._unknown_tag(tag, parent))
        elif parent is None and tag != rules.root:
            pass  # a fragment (a partial checked alone): its place is checked where it is used
        elif parent is not None and parent in rules.tags and not rules.allows(parent, tag):
            places = rules.parents_of(tag)
            where = f"; it goes inside {', '.join(f'<{p}>' for p in places)}" if places else ""
            refuse(f"<{tag}> cannot be inside <{parent}>{where}")
        if known:  # under <mj-attributes> too: a typo in a default is as silent there
            for name, value in attrs:
                message = self._attribute(tag, name, value)
                if message:
                    refuse(message)
        if closes:
            return
        self.stack.append(tag)
        if tag in rules.ending:
            self.raw_depth = 1

    def _unknown_tag(self, tag: str, parent: str | None) -> str:
        rules = self.rules
        if tag == "mj-include":
            return '<mj-include> is not supported: use {% include "partials/x.mjml" %}'
        if tag.startswith("mj"):
            guess = closest(tag, sorted(rules.tags))
            hint = f" (did you mean <{guess}>?)" if guess else ""
            return f"unknown tag <{tag}>{hint}"
        inside = f" straight inside <{parent}>" if parent else ""
        return (
            f"<{tag}>{inside} is not MJML and is dropped from the email: "
            "put HTML inside <mj-text> (or <mj-raw>)"
        )

    def _attribute(self, tag: str, name: str, value: str | None) -> str | None:
        rules = self.rules
        if PREFIX in name or name in rules.global_attributes:
            return None
        allowed = rules.root_attributes if tag == rules.root else rules.attributes.get(tag)
        if allowed is None:  # mj-all, mj-class…: defaults for other tags, any attribute
            return None
        if name not in allowed:
            guess = closest(name, sorted(allowed))
            hint = f' (did you mean "{guess}"?)' if guess else ""
            return f'<{tag}> has no attribute "{name}"{hint}'
        enum = _ENUM.fullmatch(allowed[name])
        if enum and value is not None and PREFIX not in value:
            options = enum.group(1).split(",")
            if value.strip() not in options:
                guess = closest(value, [o for o in options if o])
                hint = f' (did you mean "{guess}"?)' if guess else ""
                listed = ", ".join(o or "(empty)" for o in options)
                return f'{name}="{value}" on <{tag}> is not one of {listed}{hint}'
        return None


__all__ = ["Problem", "Spec", "problems", "spec"]
