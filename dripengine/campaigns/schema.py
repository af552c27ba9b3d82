"""The campaign file schema: one pydantic model per YAML mapping.

Validators raise ``ValueError`` with messages written for the person editing the YAML file; the
loader adds ``file:line: field:`` in front. Checks that span several fields (step ids, track bands,
conditions) raise :class:`CampaignProblems`, which carries a location per problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import time, timedelta
from email.utils import parseaddr
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, TemplateSyntaxError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from dripengine.campaigns.durations import format_duration, parse_duration

__all__ = [
    "ALWAYS_EXIT",
    "CONDITION_EVENTS",
    "EXIT_EVENTS",
    "LEAD_FIELDS",
    "STAGES",
    "WEEKDAYS",
    "Audience",
    "Campaign",
    "CampaignProblems",
    "Condition",
    "ExitRules",
    "Loc",
    "Reentry",
    "SendPolicy",
    "SendWindow",
    "Step",
    "Track",
    "format_loc",
    "is_valid_timezone",
]

STAGES = ("mql", "sal", "sql", "opportunity")
"""The stages sales can hand a lead back from."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXIT_EVENTS = ("replied", "requalified", "unsubscribed", "bounced", "complained")
ALWAYS_EXIT = frozenset({"unsubscribed", "bounced", "complained"})
"""Events that end every enrollment whatever ``exit.on`` says: suppression is not optional."""
CONDITION_EVENTS = ("opened", "clicked", "replied", "not_opened", "not_clicked")
LEAD_FIELDS = ("country", "company", "title", "timezone", "source")
"""Lead columns an audience attribute filter can name; any other key is a free attribute."""

Loc = tuple[str | int, ...]

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_JINJA = Environment()


def format_loc(loc: Loc) -> str:
    """``("tracks", "cold", "steps", 2, "wait")`` -> ``tracks.cold.steps[2].wait``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


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


# --- field checks ----------------------------------------------------------------------------


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
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
    _, address = parseaddr(value)
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


Slug = Annotated[str, AfterValidator(_slug)]
Stage = Annotated[str, AfterValidator(_one_of(STAGES, "stage"))]
ExitEvent = Annotated[str, AfterValidator(_one_of(EXIT_EVENTS, "exit event"))]
ConditionEvent = Annotated[str, AfterValidator(_one_of(CONDITION_EVENTS, "condition event"))]
Weekday = Annotated[int, BeforeValidator(_weekday)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
_SCALARS = (str, int, float, bool)


# --- models ----------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Audience(_Model):
    """Which recycled leads a campaign takes."""

    stages: Annotated[list[Stage], Field(min_length=1)]
    reasons: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reasons")
    @classmethod
    def _reasons_not_blank(cls, value: list[str]) -> list[str]:
        if any(not reason.strip() for reason in value):
            raise ValueError("a reason code cannot be blank")
        return value

    @model_validator(mode="after")
    def _attribute_filters(self) -> Audience:
        problems: list[tuple[Loc, str]] = []
        for key, accepted in self.attributes.items():
            values = accepted if isinstance(accepted, list) else [accepted]
            if not values:
                problems.append((("attributes", key), "an empty list matches no lead; remove it"))
            for index, value in enumerate(values):
                if value is None or not isinstance(value, _SCALARS):
                    loc: Loc = (
                        ("attributes", key, index) if accepted is values else ("attributes", key)
                    )
                    problems.append(
                        (loc, "expected a value or a list of values (text, number, true/false)")
                    )
        if problems:
            raise CampaignProblems(problems)
        return self


class Reentry(_Model):
    """What happens when a lead that was in this campaign before is recycled into it again."""

    policy: Literal["restart", "resume", "deny"] = "restart"
    cooldown_days: Annotated[int, Field(ge=0)] = 0
    max_recycles: Annotated[int, Field(ge=1)] | None = None


class SendWindow(_Model):
    """When mail may go out, in the lead's local time: these weekdays, from ``start`` to ``end``."""

    days: Annotated[list[Weekday], Field(min_length=1)] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4]
    )
    start: TimeOfDay = time(9, 0)
    end: TimeOfDay = time(17, 0)

    @field_serializer("days", when_used="json")
    def _day_names(self, days: list[int]) -> list[str]:
        return [WEEKDAYS[day] for day in days]

    @field_serializer("start", "end", when_used="json")
    def _clock_time(self, value: time) -> str:
        return f"{value:%H:%M}"

    @model_validator(mode="after")
    def _end_after_start(self) -> SendWindow:
        if self.end <= self.start:
            raise CampaignProblems(
                [
                    (
                        ("end",),
                        f'"{self.end:%H:%M}" must be later than start "{self.start:%H:%M}"',
                    )
                ]
            )
        return self


class SendPolicy(_Model):
    """Sender, reply address, fallback time zone and send window."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    from_: Annotated[str, AfterValidator(_sender)] = Field(alias="from")
    reply_to: Annotated[str, AfterValidator(_sender)] | None = None
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    window: SendWindow = Field(default_factory=SendWindow)

    @property
    def sender_name(self) -> str:
        return parseaddr(self.from_)[0]

    @property
    def sender_email(self) -> str:
        return parseaddr(self.from_)[1]


class Condition(_Model):
    """Send the step only if the lead did (or did not) engage; otherwise skip it."""

    event: ConditionEvent
    step: str | None = None


class Step(_Model):
    """One email of a track."""

    id: Slug
    wait: Duration
    template: Annotated[str, AfterValidator(_template_path)]
    subject: Annotated[str, AfterValidator(_jinja_subject)]
    condition: Condition | None = None

    @field_serializer("wait", when_used="json")
    def _wait_text(self, value: timedelta) -> str:
        return format_duration(value)


class Track(_Model):
    """The steps for leads whose score is ``min_score`` or more (up to the next track's band)."""

    min_score: Annotated[float, Field(ge=0)]
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_serializer("min_score", when_used="json")
    def _whole_score(self, value: float) -> float | int:
        return int(value) if value.is_integer() else value


class ExitRules(_Model):
    """Events that end an enrollment early, and an optional time limit."""

    on: list[ExitEvent] = Field(default_factory=lambda: list(EXIT_EVENTS))
    after_days: Annotated[int, Field(ge=1)] | None = None

    def exits_on(self, event: str) -> bool:
        """True if ``event`` ends the enrollment (unsubscribes, bounces, complaints always do)."""
        return event in ALWAYS_EXIT or event in self.on


class Campaign(_Model):
    """One campaign file."""

    id: Slug
    name: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1)] = 1
    priority: int = 100
    description: str | None = None
    audience: Audience
    reentry: Reentry = Field(default_factory=Reentry)
    send: SendPolicy
    tracks: Annotated[dict[str, Track], Field(min_length=1)]
    exit: ExitRules = Field(default_factory=ExitRules)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a name cannot be blank")
        return value

    @field_validator("tracks")
    @classmethod
    def _cross_checks(cls, tracks: dict[str, Track]) -> dict[str, Track]:
        problems = _track_problems(tracks) + _step_problems(tracks)
        if problems:
            raise CampaignProblems(problems)
        return tracks

    def track_for_score(self, score: float) -> tuple[str, Track]:
        """The track whose band holds ``score``: the highest ``min_score`` at or below it.

        A score below every band (a negative score) gets the lowest track.
        """
        ordered = sorted(self.tracks.items(), key=lambda item: item[1].min_score)
        chosen = ordered[0]
        for name, track in ordered:
            if track.min_score <= score:
                chosen = (name, track)
        return chosen

    def all_steps(self) -> Iterator[tuple[str, Step]]:
        """Every ``(track name, step)`` in file order."""
        for name, track in self.tracks.items():
            for step in track.steps:
                yield name, step

    def step(self, step_id: str) -> Step:
        """The step with that id, in whichever track it is; KeyError if there is none."""
        for _, step in self.all_steps():
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def _track_problems(tracks: dict[str, Track]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    previous: tuple[str, float] | None = None
    for index, (name, track) in enumerate(tracks.items()):
        if not _SLUG.fullmatch(name):
            problems.append(((name,), f'"{name}" is not a slug (use e.g. cold, warm, hot)'))
        loc: Loc = (name, "min_score")
        score = _show_score(track.min_score)
        if index == 0 and track.min_score != 0:
            problems.append((loc, f"the first track must start at 0, not {score}"))
        elif previous is not None and track.min_score == previous[1]:
            problems.append(
                (
                    loc,
                    f'{score} is already the min_score of track "{previous[0]}"; '
                    "each track starts its own band",
                )
            )
        elif previous is not None and track.min_score < previous[1]:
            problems.append(
                (
                    loc,
                    f'{score} is below track "{previous[0]}" ({_show_score(previous[1])}) '
                    "listed before it; list tracks from the lowest band up",
                )
            )
        previous = (name, track.min_score)
    return problems


def _step_problems(tracks: dict[str, Track]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, tuple[str, int]] = {}
    for name, track in tracks.items():
        for index, step in enumerate(track.steps):
            loc: Loc = (name, "steps", index)
            if step.id in seen:
                other_track, other_index = seen[step.id]
                problems.append(
                    (
                        (*loc, "id"),
                        f'"{step.id}" is already the id of '
                        f"tracks.{other_track}.steps[{other_index}]; step ids must be unique",
                    )
                )
            else:
                seen[step.id] = (name, index)
            if step.condition is not None and step.condition.step is not None:
                problem = _condition_problem(step.condition.step, name, index, track, seen)
                if problem:
                    problems.append(((*loc, "condition", "step"), problem))
            if index == 0 and step.condition is not None and step.condition.step is None:
                problems.append(
                    (
                        (*loc, "condition"),
                        "the first step of a track has no earlier step "
                        "to look at; remove the condition",
                    )
                )
    return problems


def _condition_problem(
    target: str, track_name: str, index: int, track: Track, seen: dict[str, tuple[str, int]]
) -> str | None:
    earlier = [step.id for step in track.steps[:index]]
    if target in earlier:
        return None
    if target == track.steps[index].id:
        return f'a step cannot depend on itself ("{target}"); name an earlier step'
    hint = f" (earlier steps: {', '.join(earlier)})" if earlier else ""
    later = [step.id for step in track.steps[index + 1 :]]
    if target in later:
        return f'"{target}" comes later in track "{track_name}"; name an earlier step{hint}'
    if target in seen and seen[target][0] != track_name:
        return (
            f'"{target}" is in track "{seen[target][0]}"; a condition can only name an '
            f"earlier step of the same track{hint}"
        )
    return f'unknown step "{target}"; name an earlier step of this track{hint}'


def _show_score(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
