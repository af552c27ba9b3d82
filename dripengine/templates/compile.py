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

Step 1 is :mod:`~dripengine.templates.structure`; step 2's problems are put at their file and line
by :mod:`~dripengine.templates.mjml_errors`.

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
from jinja2 import TemplateNotFound

from dripengine.templates.environment import read_source, text_environment
from dripengine.templates.errors import TemplateError
from dripengine.templates.mjml_errors import check_mjml, check_survivors, unbalanced
from dripengine.templates.protect import PLACEHOLDER, Registry, Token, escape_stray_delimiters
from dripengine.templates.structure import SourceFiles, Structure
from dripengine.templates.text import html_to_text

MJML_VERSION = version("mjml-python")
CACHE_SIZE = 256
_HREF = re.compile(r'(<a\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
_PREVIEW = re.compile(r"<mj-preview\b[^>]*>(.*?)</mj-preview>", re.DOTALL | re.IGNORECASE)


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


def compile_template(
    templates_dir: Path, name: str, *, cache: _LRU | None = None
) -> tuple[CompiledSource, SourceFiles]:
    """Compile ``templates_dir/name`` (or take it from the cache); raises :class:`TemplateError`."""
    cache = CACHE if cache is None else cache
    structure = Structure(templates_dir)
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
    structure: Structure, name: str, resolved: str, resolved_text: str | None, digest: str
) -> CompiledSource:
    registry = structure.registry
    shown = structure.shown(name)
    check_mjml(structure, name, resolved)
    try:
        html = mjml_to_html(resolved)
    except (ValueError, RuntimeError) as exc:
        file, line = unbalanced(structure, name)
        raise TemplateError(
            file, line, f"MJML does not compile: {exc} (check that every <mj-…> tag is closed)"
        ) from None
    check_survivors(registry, resolved, html, shown)
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


__all__ = [
    "CACHE",
    "MJML_VERSION",
    "CompiledSource",
    "Part",
    "compile_template",
    "mjml_to_html",
    "text_sibling",
]
