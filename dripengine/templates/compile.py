"""Compile once: layouts resolved, Jinja protected, MJML compiled, text part derived, cached.

A template is compiled in three steps, once per template version:

1. **Structure.** Each file read (the step's template, its layout, its partials) goes through
   :class:`~dripengine.templates.protect.Registry`: every Jinja tag becomes a placeholder *except*
   ``{% extends %}``, ``{% block %}``, ``{% endblock %}``, ``{% include %}`` and ``{{ super() }}``.
   Jinja then renders the step template once with only those tags live (template names must be
   literal strings), which pastes the layout, blocks and partials together. The result is the
   fully resolved MJML with the per-lead Jinja still in placeholders; each placeholder remembers
   its file and line, so later errors point at ``templates/partials/footer.mjml:3``.
2. **MJML.** The resolved source is compiled by mjml-python. Every placeholder must come out:
   an expression at least once, a ``{% %}`` tag exactly once; one that MJML dropped (it sat in a
   size attribute such as ``mj-column width``) or copied (an attribute MJML repeats, such as
   ``background-color``) is refused with its line. Literal ``http(s)`` hrefs are wrapped in
   ``link(…)`` (see :mod:`dripengine.templates.links`).
3. **Per-lead templates.** Placeholders go back, giving the Jinja source of the HTML. The text
   part is the sibling ``.txt`` template (``lost-sql/checkin.txt``, resolved the same way) or the
   compiled HTML turned into text *with the placeholders still in it*, so the text part is also
   rendered per lead rather than converted per email; when the converter moved or lost a
   ``{% %}`` tag, the text is converted from each rendered HTML instead. The preheader is the
   content of ``<mj-preview>``.

Results are cached in-process by the SHA-256 of the resolved sources plus the mjml-python
version, so an unchanged template is never compiled again, and MJML is never compiled per email.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import jinja2
import mjml
from jinja2 import TemplateNotFound, UndefinedError

from dripengine.templates import mjml_rules
from dripengine.templates.environment import (
    SourceLoader,
    read_source,
    shown_name,
    structure_environment,
    text_environment,
)
from dripengine.templates.errors import TemplateError
from dripengine.templates.protect import (
    PLACEHOLDER,
    PREFIX,
    Protected,
    Registry,
    Token,
    UnclosedTag,
    escape_stray_delimiters,
    is_structure,
)
from dripengine.templates.text import html_to_text

MJML_VERSION = version("mjml-python")
CACHE_SIZE = 256
_HREF = re.compile(r'(<a\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
_PREVIEW = re.compile(r"<mj-preview\b[^>]*>(.*?)</mj-preview>", re.DOTALL | re.IGNORECASE)
_MJ_TAG = re.compile(r"<(/?)(mj-[\w-]+|mjml)\b[^>]*?(/?)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w-]+)\s*=\s*[\"'][^\"']*$")
_VOID_ENDINGS = ("mj-all", "mj-class", "mj-breakpoint", "mj-font", "mj-include")


def mjml_to_html(source: str) -> str:
    """mjml-python's compile (a module function so tests can count the calls)."""
    return str(mjml.mjml2html(source))


@dataclass(frozen=True)
class Part:
    """A Jinja source made from the compiled template, and which tokens sit on each of its lines."""

    source: str
    lines: dict[int, list[int]]


@dataclass(frozen=True)
class CompiledSource:
    """What one template version compiles to; the renderer builds Jinja templates from it."""

    name: str
    shown: str
    digest: str
    html: Part
    text: Part | None
    text_from_file: bool
    preheader: Part
    tokens: tuple[Token, ...]


@dataclass(frozen=True)
class SourceFiles:
    """The files a compile read, with their modification times (None: was absent)."""

    files: tuple[tuple[Path, float | None], ...]

    def fresh(self) -> bool:
        for path, mtime in self.files:
            try:
                now: float | None = path.stat().st_mtime
            except OSError:
                now = None
            if now != mtime:
                return False
        return True


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, CompiledSource] = OrderedDict()

    def get(self, key: str) -> CompiledSource | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: str, value: CompiledSource) -> None:
        if self.size <= 0:
            return
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


CACHE = _LRU(CACHE_SIZE)
"""The process-wide compile cache (by content hash); ``CACHE.data.clear()`` empties it."""


def text_sibling(name: str) -> str:
    return name.rsplit(".", 1)[0] + ".txt" if "." in name.rsplit("/", 1)[-1] else name + ".txt"


class _Structure:
    """The structure pass over one template and the files it pulls in."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.registry = Registry()
        self.protected: dict[str, Protected] = {}
        self.loader = SourceLoader(templates_dir, self._protect)
        self.env = structure_environment(self.loader)

    def shown(self, name: str) -> str:
        return shown_name(self.templates_dir, name)

    def _protect(self, name: str, source: str) -> str:
        try:
            protected = self.registry.protect(source, self.shown(name), keep=is_structure)
        except UnclosedTag as exc:
            line = source.count("\n", 0, exc.position) + 1
            raise TemplateError(self.shown(name), line, f"{exc}: close it") from None
        except ValueError as exc:
            raise TemplateError(self.shown(name), 1, f"{exc}; rename that text") from None
        self.protected[name] = protected
        return protected.text

    def resolve(self, name: str) -> str:
        try:
            return self.env.get_template(name).render()
        except TemplateError:
            raise
        except TemplateNotFound as exc:
            where, line = self._frame(exc, name)
            missing = exc.name or name
            raise TemplateError(
                self.shown(where),
                line,
                f'"{missing}" not found: {self.shown(str(missing))} does not exist '
                "(names in extends and include are relative to the templates folder)",
            ) from None
        except UndefinedError as exc:
            where, line = self._frame(exc, name)
            raise TemplateError(
                self.shown(where),
                line,
                "extends and include need a template name in quotes, such as "
                f'{{% include "partials/footer.mjml" %}} ({exc.message})',
            ) from None
        except jinja2.TemplateError as exc:
            where, line = self._frame(exc, name)
            raise TemplateError(self.shown(where), line, exc.message or repr(exc)) from None

    def _frame(self, exc: BaseException, fallback: str) -> tuple[str, int | None]:
        """The innermost template file and source line the exception went through."""
        by_file = {str(path): name for name, (path, _) in self.loader.files.items()}
        found: tuple[str, int | None] = (fallback, None)
        tb = exc.__traceback__
        while tb is not None:
            name = by_file.get(tb.tb_frame.f_code.co_filename)
            if name is not None and name in self.protected:
                found = (name, self.protected[name].source_line(tb.tb_lineno))
            tb = tb.tb_next
        return found

    def files(self, extra: list[Path]) -> SourceFiles:
        entries: list[tuple[Path, float | None]] = [
            (path, mtime) for path, mtime in self.loader.files.values()
        ]
        entries += [(path, None) for path in extra]
        return SourceFiles(tuple(entries))


def compile_template(
    templates_dir: Path, name: str, *, cache: _LRU | None = None
) -> tuple[CompiledSource, SourceFiles]:
    """Compile ``templates_dir/name`` (or take it from the cache); raises :class:`TemplateError`."""
    cache = CACHE if cache is None else cache
    structure = _Structure(templates_dir)
    shown = structure.shown(name)
    try:
        read_source(templates_dir, name)
    except TemplateNotFound:
        raise TemplateError(shown, None, "the template file does not exist") from None
    resolved = structure.resolve(name)
    sibling = text_sibling(name)
    absent: list[Path] = []
    resolved_text: str | None = None
    if (templates_dir / sibling).is_file():
        resolved_text = structure.resolve(sibling)
    else:
        absent.append(templates_dir / sibling)
    registry = structure.registry
    digest = hashlib.sha256(
        "\0".join(
            [registry.restore(resolved), registry.restore(resolved_text or ""), MJML_VERSION]
        ).encode()
    ).hexdigest()
    files = structure.files(absent)
    cached = cache.get(digest)
    if cached is not None:
        return cached, files
    compiled = _compile(structure, name, resolved, resolved_text, digest)
    cache.put(digest, compiled)
    return compiled, files


def _compile(
    structure: _Structure, name: str, resolved: str, resolved_text: str | None, digest: str
) -> CompiledSource:
    registry = structure.registry
    shown = structure.shown(name)
    _check_mjml(structure, name, resolved)
    try:
        html = mjml_to_html(resolved)
    except (ValueError, RuntimeError) as exc:
        file, line = _unbalanced(structure, name)
        raise TemplateError(
            file, line, f"MJML does not compile: {exc} (check that every <mj-…> tag is closed)"
        ) from None
    _check_survivors(registry, resolved, html, shown)
    html = _wrap_links(registry, html)
    html_part = _part(registry, html)
    text_from_file = resolved_text is not None
    text_part: Part | None
    if resolved_text is not None:
        text_part = _part(registry, resolved_text)
    else:
        text_part = _derived_text(registry, html)
    match = _PREVIEW.search(resolved)
    preheader = _part(registry, match.group(1) if match else "")
    return CompiledSource(
        name=name,
        shown=shown,
        digest=digest,
        html=html_part,
        text=text_part,
        text_from_file=text_from_file,
        preheader=preheader,
        tokens=tuple(registry.tokens),
    )


def _part(registry: Registry, protected: str) -> Part:
    source, lines = registry.restore_with_lines(escape_stray_delimiters(protected))
    return Part(source, lines)


def _derived_text(registry: Registry, html: str) -> Part | None:
    text = html_to_text(html)
    blocks_html = [i for i in registry.indices(html) if registry.tokens[i].kind == "block"]
    blocks_text = [i for i in registry.indices(text) if registry.tokens[i].kind == "block"]
    if blocks_html != blocks_text:
        return None  # the converter moved or lost a {% %} tag: convert each rendered email instead
    part = _part(registry, text)
    try:
        text_environment().parse(part.source)
    except jinja2.TemplateSyntaxError:
        return None
    return part


def _wrap_links(registry: Registry, html: str) -> str:
    """Every literal ``http(s)`` href becomes ``{{ link("…") }}`` so it is recorded and tracked."""

    def wrap(match: re.Match[str]) -> str:
        value = match.group(2)
        if PLACEHOLDER.search(value) or not value.lower().startswith(("http://", "https://")):
            return match.group(0)
        url = htmllib.unescape(value)
        token = Token("{{ link(" + json.dumps(url) + ") }}", "expr")
        return match.group(1) + registry.placeholder(token) + match.group(3)

    return _HREF.sub(wrap, html)


def _check_survivors(registry: Registry, resolved: str, html: str, shown: str) -> None:
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


def _check_mjml(structure: _Structure, name: str, resolved: str) -> None:
    """MJML's own rules (:mod:`.mjml_rules`): every problem, each at its file and line."""
    found = mjml_rules.problems(resolved)
    if not found:
        return
    errors = [TemplateError(*_locate(structure, name, resolved, p), p.message) for p in found]
    first = errors[0]
    first.others = errors[1:]
    raise first


def _locate(
    structure: _Structure, name: str, resolved: str, problem: mjml_rules.Problem
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


def _unbalanced(structure: _Structure, name: str) -> tuple[str, int | None]:
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


__all__ = [
    "CACHE",
    "MJML_VERSION",
    "CompiledSource",
    "Part",
    "SourceFiles",
    "compile_template",
    "mjml_to_html",
    "text_sibling",
]
