"""The error every template problem becomes: one line, ``templates/x.mjml:12: message``."""

from __future__ import annotations

from dripengine.exceptions import DripError


class TemplateError(DripError):
    """A template cannot be rendered."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.detail = message
        self.expression: str | None = None  # the Jinja tag that failed, when known
        self.undefined: str | None = None  # the undefined name, for an undefined variable
        self.others: list[TemplateError] = []  # more problems found in the same pass, in order
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")
