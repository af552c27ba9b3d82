"""The Jinja environments and the loader that reads template files.

Three environments: HTML (autoescape on: lead data never becomes markup), text (autoescape off:
the text part, the subject, the preheader) and the structure pass (only layout tags live; see
:mod:`dripengine.templates.compile`). All three are Jinja's ``ImmutableSandboxedEnvironment``: a
template author writes emails, not server code — no ``__globals__``/``__class__`` walks to ``os``,
no calling ``.append``/``.update`` on the context, and an attempt is a template error at its line. The ``undefined`` class decides what a missing variable
does: :class:`jinja2.Undefined` (prints nothing) when sending, :class:`jinja2.StrictUndefined`
when validating, :class:`NeedsDefault` to find a lead field used without ``| default(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, Undefined
from jinja2.exceptions import TemplateSyntaxError
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dripengine.templates.errors import TemplateError
from dripengine.templates.links import LinkRecorder


class NeedsDefault(Undefined):
    """Undefined that may be tested (``{% if lead.company %}``, ``is defined``) but not printed."""

    __slots__ = ()
    __str__ = Undefined._fail_with_undefined_error
    __iter__ = Undefined._fail_with_undefined_error
    __len__ = Undefined._fail_with_undefined_error


# Our own helpers that templates call: the sandbox's per-call safety lookups are for what a
# template reaches, not for these (24 link() calls an email: ~25% of the sandbox's extra cost).
_OURS = frozenset({LinkRecorder.html_link, LinkRecorder.text_link})


class EmailSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with our ``link`` helper called directly."""

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(__obj, "__func__", None) in _OURS:
            return __context.call(__obj, *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def html_environment(undefined: type[Undefined] = Undefined) -> Environment:
    return EmailSandbox(autoescape=True, undefined=undefined, keep_trailing_newline=True)


def text_environment(undefined: type[Undefined] = Undefined) -> Environment:
    return EmailSandbox(autoescape=False, undefined=undefined, keep_trailing_newline=True)


def shown_name(templates_dir: Path, name: str) -> str:
    """``templates/x.mjml``: the path relative to the templates folder's parent."""
    folder = (
        templates_dir.absolute().name
        if templates_dir.name in ("", ".", "..")
        else templates_dir.name
    )
    return f"{folder}/{name}" if folder else name


_CHECK = html_environment()


def read_source(templates_dir: Path, name: str) -> tuple[str, Path]:
    """The file's text, checked for UTF-8 and for Jinja syntax (including unknown filters).

    Raises :class:`TemplateNotFound` for a missing file and :class:`TemplateError` otherwise.
    """
    shown = shown_name(templates_dir, name)
    path = templates_dir.joinpath(*split_template_path(name))
    if not path.is_file():
        raise TemplateNotFound(name)
    data = path.read_bytes()
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TemplateError(
            shown,
            line,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
        ) from None
    source = source.removeprefix("\ufeff")
    try:
        _CHECK.compile(source, name, str(path))
    except TemplateSyntaxError as exc:
        raise TemplateError(shown, exc.lineno, syntax_message(exc)) from None
    return source, path


def syntax_message(exc: TemplateSyntaxError) -> str:
    message = (exc.message or "syntax error").rstrip(".")
    if message.startswith("No filter named"):
        return f"{message}: check the spelling (Jinja filters: default, upper, title, …)"
    if message.startswith("No test named"):
        return f"{message}: check the spelling"
    return f"Jinja syntax error: {message}"


class SourceLoader(BaseLoader):
    """Loads ``templates/<name>``, passing each source through ``transform`` (the protection).

    Remembers each file read and its modification time, so a compiled template knows when it is
    stale.
    """

    def __init__(self, templates_dir: Path, transform: Callable[[str, str], str]) -> None:
        self.templates_dir = templates_dir
        self.transform = transform
        self.files: dict[str, tuple[Path, float]] = {}

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, path = read_source(self.templates_dir, template)
        mtime = path.stat().st_mtime
        self.files[template] = (path, mtime)
        return self.transform(template, source), str(path), lambda: True


def structure_environment(loader: SourceLoader) -> Environment:
    return EmailSandbox(
        loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
    )
