"""Render one email for one lead: HTML, plain text, subject, preheader and its links.

:class:`TemplateEngine` compiles each template once (see :mod:`dripengine.templates.compile`),
keeps the Jinja templates built from it, and per email only runs Jinja. Before each render it
checks the modification times of the files the template was built from (a few ``stat`` calls), so
an edited template is picked up without a restart; ``check_files=False`` skips that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import Template, Undefined

from dripengine.templates.compile import CompiledSource, Part, compile_template
from dripengine.templates.context import UnknownName
from dripengine.templates.environment import html_environment, text_environment
from dripengine.templates.errors import TemplateError
from dripengine.templates.links import UTM, Link, LinkRecorder, RewriteLink
from dripengine.templates.structure import SourceFiles
from dripengine.templates.text import clean_subject, html_to_text, one_line

_NAMES = (
    re.compile(r"has no attribute '([^']+)'"),
    re.compile(r"'([^']+)' is undefined"),
    re.compile(r"no element '?([^']+)'?"),
    # the sandbox's refusal: the name finds the tag among others on the same compiled line
    re.compile(r"access to attribute '([^']+)' of"),
)
SUBJECT_CACHE = 512


@dataclass(frozen=True)
class RenderedEmail:
    """One email, ready for a provider: every part, and the links in the HTML."""

    subject: str
    preheader: str
    html: str
    text: str
    links: tuple[Link, ...] = ()


@dataclass
class _Loaded:
    compiled: CompiledSource
    files: SourceFiles
    html: Template
    text: Template | None
    preheader: Template


class TemplateEngine:
    """Templates from one folder, compiled once, rendered per lead.

    ``undefined`` decides what a missing variable does: :class:`jinja2.Undefined` (prints nothing;
    the default, for sending) or :class:`jinja2.StrictUndefined` (an error; for validation and
    previews).
    """

    def __init__(
        self,
        templates_dir: Path,
        *,
        undefined: type[Undefined] = Undefined,
        check_files: bool = True,
    ) -> None:
        self.templates_dir = Path(templates_dir)
        self.check_files = check_files
        self._html = html_environment(undefined)
        self._text = text_environment(undefined)
        self._loaded: dict[str, _Loaded] = {}
        self._subjects: dict[str, Template] = {}

    def load(self, name: str) -> _Loaded:
        """The compiled template, compiling it if it is new or its files changed."""
        loaded = self._loaded.get(name)
        if loaded is not None and (not self.check_files or loaded.files.fresh()):
            return loaded
        compiled, files = compile_template(self.templates_dir, name)
        if loaded is not None and loaded.compiled is compiled:
            loaded.files = files
            return loaded
        loaded = _Loaded(
            compiled=compiled,
            files=files,
            html=self._build(self._html, compiled, compiled.html),
            text=None
            if compiled.text is None
            else self._build(self._text, compiled, compiled.text),
            preheader=self._build(self._text, compiled, compiled.preheader),
        )
        self._loaded[name] = loaded
        return loaded

    def _build(self, env: jinja2.Environment, compiled: CompiledSource, part: Part) -> Template:
        try:
            return _flat_globals(env.from_string(part.source))
        except jinja2.TemplateSyntaxError as exc:
            raise _mapped(exc, compiled, part, exc.lineno) from None

    def subject_template(self, subject: str) -> Template:
        template = self._subjects.get(subject)
        if template is None:
            if len(self._subjects) >= SUBJECT_CACHE:
                self._subjects.clear()
            template = self._text.from_string(subject)
            self._subjects[subject] = template = _flat_globals(template)
        return template

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        subject: str,
        utm: UTM | None = None,
        rewrite_link: RewriteLink | None = None,
    ) -> RenderedEmail:
        """Render template ``name`` (relative to the templates folder) for one lead.

        ``context`` comes from :func:`~dripengine.templates.context.build_context`. ``subject``
        is the step's Jinja subject. ``utm`` adds UTM parameters to every http(s) link;
        ``rewrite_link(link, url)`` returns the URL to put in the email instead (click tracking).
        Raises :class:`TemplateError` naming the template file and line.
        """
        loaded = self.load(name)
        compiled = loaded.compiled
        params: dict[str, str] = {}
        if utm is not None:
            params = utm.params(str(context["campaign"]["id"]), str(context["step"]["id"]))
        untouched = {str(context.get(k)) for k in ("unsubscribe_url", "preferences_url")}
        links = LinkRecorder(params=params, rewrite=rewrite_link, untouched=untouched)
        html = _run(loaded.html, {**context, "link": links.html_link}, compiled, compiled.html)
        if loaded.text is not None and compiled.text is not None:
            text = _run(loaded.text, {**context, "link": links.text_link}, compiled, compiled.text)
            text = text.strip() + "\n"
        else:
            text = html_to_text(html)
        preheader = one_line(
            _run(
                loaded.preheader, {**context, "link": links.text_link}, compiled, compiled.preheader
            )
        )
        try:
            subject_text = self.subject_template(subject).render(
                {**context, "link": links.text_link}
            )
        except jinja2.TemplateError as exc:
            error = TemplateError(f'subject "{subject}"', None, _describe(exc))
            error.expression = f'"{subject}"'
            if isinstance(exc, jinja2.UndefinedError):
                error.undefined = _undefined_name(str(exc))
            raise error from None
        return RenderedEmail(
            subject=clean_subject(subject_text),
            preheader=preheader,
            html=html,
            text=text,
            links=tuple(links.links),
        )


def _flat_globals(template: Template) -> Template:
    """``template`` with its globals in one plain dict instead of Jinja's ``ChainMap``.

    Jinja keeps a template's globals as ``ChainMap(template's, environment's)`` and copies and
    iterates that map on every ``render()``: a quarter of the CPU of rendering one email (four
    renders: HTML, text, preheader, subject) went there. Our environments' globals are complete
    before any template is built and never change afterwards, so one flat copy is the same.
    """
    template.globals = dict(template.globals)
    return template


def _run(template: Template, context: dict[str, Any], compiled: CompiledSource, part: Part) -> str:
    try:
        return template.render(context)
    except TemplateError:
        raise
    except Exception as exc:
        raise _mapped(exc, compiled, part, _template_line(exc)) from exc


def _template_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _undefined_name(message: str) -> str | None:
    for pattern in _NAMES:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


def _describe(exc: BaseException) -> str:
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, UnknownName):
        hint = f'did you mean "{exc.suggestion}"?' if exc.suggestion else "check the spelling"
        return f'"{exc.name}" is undefined: {hint}'
    if isinstance(exc, jinja2.UndefinedError):
        name = _undefined_name(message)
        if name:
            return (
                f"\"{name}\" is undefined; check the spelling, or give it a default: | default('…')"
            )
    if message.startswith("No filter named"):
        return f"{message.rstrip('.')}: check the spelling"
    return message


def _mapped(
    exc: BaseException, compiled: CompiledSource, part: Part, line: int | None
) -> TemplateError:
    """The error at the source file and line of the Jinja tag that raised it."""
    candidates = [compiled.tokens[i] for i in part.lines.get(line or 0, [])]
    candidates = [t for t in candidates if t.file is not None] or candidates
    name = _undefined_name(str(exc))
    token = next((t for t in candidates if name and name in t.text), None)
    if token is None and candidates:
        token = candidates[0]
    message = _describe(exc)
    if token is not None and token.file is not None:
        error = TemplateError(token.file, token.line, f"{token.text}: {message}")
    else:
        error = TemplateError(compiled.shown, None, message)
    error.expression = token.text if token is not None else None
    error.undefined = name if isinstance(exc, jinja2.UndefinedError) else None
    return error
