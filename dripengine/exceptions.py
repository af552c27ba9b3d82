"""One hierarchy of errors; each class's docstring is its default message.

The CLI turns any :class:`DripError` into one line on stderr and exit status 1.
"""

from __future__ import annotations


class DripError(Exception):
    """Something went wrong in dripengine."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(DripError):
    """The configuration is not valid."""


class CampaignError(DripError):
    """A campaign file is not valid."""


class CampaignFileErrors(CampaignError):
    """One or more campaign files are not valid."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        first = errors[0] if errors else "no details"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class SLAError(DripError):
    """The SLA file is not valid."""

    def __init__(self, message: str | None = None, *, errors: list[str] | None = None) -> None:
        self.errors = errors if errors else [message or (self.__doc__ or "").strip()]
        if message is None and errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            message = errors[0] + more
        super().__init__(message)


class FunnelError(DripError):
    """That lifecycle move is not allowed."""


class LeadNotFound(DripError):
    """No lead with that address."""


class ImportFileError(DripError):
    """The file cannot be imported."""


class DatabaseError(DripError):
    """The database is not ready."""


class FeedbackError(DripError):
    """That feedback cannot be recorded."""


class FeedbackConflict(FeedbackError):
    """That feedback contradicts where the lead stands or what sales said before."""


class StatsError(DripError):
    """Those numbers cannot be counted (a wrong --since, an unknown campaign, a report not written)."""
