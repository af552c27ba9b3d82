"""The field-level vocabulary of campaign files: accepted values, and checks with messages.

Each check raises ``ValueError`` with a message written for the person editing the YAML file; the
loader puts ``file:line: field:`` in front of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time, timedelta
from email.utils import getaddresses
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import AfterValidator, BeforeValidator

from dripengine.campaigns.durations import parse_duration
from dripengine.stages import RECYCLABLE
from dripengine.yamlfile.locations import Loc, format_loc

STAGES = RECYCLABLE
"""The stages sales can hand a lead back from (the funnel's own list)."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXIT_EVENTS = ("replied", "requalified", "unsubscribed", "bounced", "complained")
ALWAYS_EXIT = frozenset({"unsubscribed", "bounced", "complained"})
"""Events that end every enrollment whatever ``exit.on`` says: suppression is not optional."""
CONDITION_EVENTS = ("opened", "clicked", "replied", "not_opened", "not_clicked")
LEAD_FIELDS = ("country", "company", "title", "timezone", "source")
"""Lead columns an audience attribute filter can name; any other key is a free attribute."""

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_JINJA = ImmutableSandboxedEnvironment()  # the subject's syntax, checked as it will run


class CampaignProblems(ValueError):
    """Problems found by a check across fields, each with the location it belongs to."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in problems))


def is_valid_timezone(name: str) -> bool:
    """True when ``name`` is an IANA time zone zoneinfo can load (``Europe/Berlin``)."""
    if not isinstance(name, str) or not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# --- checks --------------------------------------------------------------------------------


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise ValueError(
            f'"{value}" is not a slug (use lowercase letters, digits and hyphens, '
            "e.g. lost-sql-winback)"
        )
    return value


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f'unknown {what} "{value}" (use {", ".join(allowed)})')
        return value

    return check


_DAY_NAMES = {name: index for index, name in enumerate(WEEKDAYS)} | {
    name: index
    for index, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}


def _weekday(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _DAY_NAMES:
        return _DAY_NAMES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    raise ValueError(f"unknown weekday {shown} (use {', '.join(WEEKDAYS)})")


def _time_of_day(value: Any) -> Any:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = _TIME.fullmatch(value.strip())
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    raise ValueError(f'{shown} is not a time of day (use HH:MM in quotes, e.g. "09:00")')


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"{value} is negative; a wait cannot be")
        return value
    return parse_duration(value)


def _template_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if not value.strip() or value.startswith("/") or ".." in parts or ":" in parts[0]:
        raise ValueError(f'"{value}" must be a path inside templates/ (e.g. lost-sql/checkin.mjml)')
    return value


def _jinja_subject(value: str) -> str:
    if not value.strip():
        raise ValueError("a subject cannot be empty")
    try:
        _JINJA.parse(value)
    except TemplateSyntaxError as exc:
        reason = (exc.message or "syntax error").rstrip(".")
        raise ValueError(f'"{value}" is not a valid Jinja template: {reason}') from None
    return value


def _sender(value: str) -> str:
    addresses = getaddresses([value])
    if len(addresses) > 1:
        raise ValueError(
            f'"{value}" is more than one address (a display name with a comma needs double '
            """quotes: '"Acme, Inc." <hello@acme.example>')"""
        )
    address = addresses[0][1] if addresses else ""
    if not address:
        raise ValueError(
            f'"{value}" is not an email address (use "Name <address@example.com>" '
            "or address@example.com)"
        )
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f'"{value}" is not a valid email address: {exc}') from None
    return value


def _timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError(
            f'"{value}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York)'
        )
    return value


MAX_HOLDOUT = 0.5


def _holdout_share(value: Any) -> Any:
    """``10%`` or a fraction ``0.1``: the share of a campaign's leads sent nothing (0: none)."""
    fix = "write a share from 0% to 50%, e.g. holdout: 10%"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a share; {fix}")
    if isinstance(value, str):
        text = value.strip()
        number = text[:-1].strip() if text.endswith("%") else None
        try:
            share = float(number) / 100 if number is not None else float("nan")
        except ValueError:
            share = float("nan")
        if share != share:  # not a number
            raise ValueError(f'"{value}" is not a share; {fix}')
        shown = f'"{value}"'
    else:
        share, shown = float(value), str(value)
        if share != share or share > 1:
            raise ValueError(f"{shown} is not a share (a number is a fraction: 0.1 = 10%); {fix}")
    if share < 0:
        raise ValueError(f"{shown} is negative; {fix} (0% turns the holdout off)")
    if share > MAX_HOLDOUT:
        raise ValueError(
            f"{shown} would send nothing to more leads than it mails; at most 50%, e.g. holdout: 10%"
        )
    return share


Slug = Annotated[str, AfterValidator(_slug)]
Stage = Annotated[str, AfterValidator(_one_of(STAGES, "stage"))]
ExitEvent = Annotated[str, AfterValidator(_one_of(EXIT_EVENTS, "exit event"))]
ConditionEvent = Annotated[str, AfterValidator(_one_of(CONDITION_EVENTS, "condition event"))]
Weekday = Annotated[int, BeforeValidator(_weekday)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Sender = Annotated[str, AfterValidator(_sender)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
TemplatePath = Annotated[str, AfterValidator(_template_path)]
SubjectTemplate = Annotated[str, AfterValidator(_jinja_subject)]
HoldoutShare = Annotated[float, BeforeValidator(_holdout_share)]

SCALARS = (str, int, float, bool)
"""The types an audience attribute filter value may have."""
