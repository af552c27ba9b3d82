"""The campaign file schema: one pydantic model per YAML mapping.

Field values are checked by the types in :mod:`dripengine.campaigns.fields`. Checks that span
several fields (step ids, track bands, conditions) raise :class:`CampaignProblems`, which carries a
location per problem so the loader can point at the right line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta
from email.utils import parseaddr
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from dripengine.campaigns.durations import format_duration
from dripengine.campaigns.fields import (
    ALWAYS_EXIT,
    CONDITION_EVENTS,
    EXIT_EVENTS,
    LEAD_FIELDS,
    SCALARS,
    SLUG,
    STAGES,
    WEEKDAYS,
    CampaignProblems,
    ConditionEvent,
    Duration,
    ExitEvent,
    HoldoutShare,
    Loc,
    Sender,
    Slug,
    Stage,
    SubjectTemplate,
    TemplatePath,
    TimeOfDay,
    TimeZoneName,
    Weekday,
    format_loc,
    is_valid_timezone,
)
from dripengine.campaigns.variants import PickWinner, Variant, step_variant_problems

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
    "UTMSettings",
    "format_loc",
    "is_valid_timezone",
]

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
                if value is None or not isinstance(value, SCALARS):
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


class UTMSettings(_Model):
    """UTM parameters added to every http(s) link; ``utm_content`` is the step id."""

    source: Annotated[str, Field(min_length=1)]
    medium: Annotated[str, Field(min_length=1)] = "email"
    campaign: Annotated[str, Field(min_length=1)] | None = None  # default: the campaign id


class SendPolicy(_Model):
    """Sender, reply address, fallback time zone, send window and link tagging."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    from_: Sender = Field(alias="from")
    reply_to: Sender | None = None
    timezone: TimeZoneName = "UTC"
    window: SendWindow = Field(default_factory=SendWindow)
    utm: UTMSettings | None = None

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
    template: TemplatePath
    subject: SubjectTemplate
    condition: Condition | None = None
    variants: list[Variant] | None = None  # A/B versions (docs/variants.md)
    pick_winner: PickWinner | None = None

    @model_serializer(mode="wrap")
    def _without_unused_ab_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)  # a step without variants dumps as it did before them
        if isinstance(dumped, dict):
            for name in ("variants", "pick_winner"):
                if dumped.get(name, ...) is None:
                    del dumped[name]
        return dumped

    @model_validator(mode="after")
    def _variants(self) -> Step:
        problems = step_variant_problems(self)
        if problems:
            raise CampaignProblems(problems)
        return self

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
    # what recipients see on the unsubscribe and preferences pages (`name` is for the team)
    public_name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    audience: Audience
    reentry: Reentry = Field(default_factory=Reentry)
    send: SendPolicy
    tracks: Annotated[dict[str, Track], Field(min_length=1)]
    exit: ExitRules = Field(default_factory=ExitRules)
    # the share of the leads routed here that is enrolled but sent nothing (docs/holdout.md)
    holdout: HoldoutShare | None = None

    @field_serializer("holdout", when_used="json")
    def _holdout_percent(self, value: float | None) -> str | None:
        return None if value is None else f"{value * 100:g}%"

    @property
    def holdout_share(self) -> float:
        """The holdout share, 0.0 when the campaign has none."""
        return self.holdout or 0.0

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
        if not SLUG.fullmatch(name):
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
