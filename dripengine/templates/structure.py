"""The structure pass: a template with its layout, blocks and partials pasted together.

Each file read goes through :class:`~dripengine.templates.protect.Registry`, so every Jinja tag
but the structure ones (``extends``, ``block``, ``include``, ``super()``) becomes a placeholder
that remembers its file and line; Jinja then renders the step template once with only those tags
live. A missing file, a name that is not a literal string or a Jinja syntax error comes out as a
:class:`~dripengine.templates.errors.TemplateError` at the file and line it is in. The files read
(and their modification times) are kept so the renderer knows when a template changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import TemplateNotFound, UndefinedError

from dripengine.templates.environment import SourceLoader, shown_name, structure_environment
from dripengine.templates.errors import TemplateError
from dripengine.templates.protect import Protected, Registry, UnclosedTag, is_structure

__all__ = ["SourceFiles", "Structure"]


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


class Structure:
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
