"""The SLA between marketing and sales (``sla.yaml``): definitions, recycle reasons, requalification.

Loaded once per command; :func:`render_markdown` prints it for ``drip sla``.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dripengine.exceptions import SLAError
from dripengine.funnel.sla_clock import DEFAULT_DAYS, DEFAULT_HOURS, WEEKDAYS, WorkingTime
from dripengine.funnel.sla_clock import parse_hours as _parse_hours
from dripengine.stages import RECYCLABLE, label
from dripengine.suggest import did_you_mean
from dripengine.yamlfile.parse import read_yaml
from dripengine.yamlfile.validation import validate

FitGrade = Literal["A", "B", "C", "D"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecycleReason(_Strict):
    label: str
    stages: list[str] = Field(default_factory=lambda: list(RECYCLABLE), min_length=1)
    may_requalify: bool = True
    description: str | None = None

    @field_validator("stages")
    @classmethod
    def _recyclable(cls, stages: list[str]) -> list[str]:
        for stage in stages:
            if stage not in RECYCLABLE:
                raise ValueError(
                    f'"{stage}" is not a stage leads are recycled from (use: {", ".join(RECYCLABLE)})'
                )
        return stages


class Requalification(_Strict):
    score: float = Field(default=60, ge=0)
    min_fit: FitGrade = "B"
    score_if_recycled_before: float | None = Field(default=None, ge=0)

    def threshold(self, recycle_count: int) -> float:
        """The score a lead recycled ``recycle_count`` times must reach."""
        if recycle_count > 1 and self.score_if_recycled_before is not None:
            return self.score_if_recycled_before
        return self.score


# The reason dripengine recycles a lead with when sales gave no decision in time
# (``on_no_decision: renurture``): the SLA's own, not one sales may give (docs/sla.md).
NO_DECISION = "sla_no_decision"
NO_DECISION_STAGES: tuple[str, ...] = ("mql", "sal")


class SalesCommitments(_Strict):
    first_touch_hours: int | None = Field(default=None, ge=0)  # working hours
    decision_days: int | None = Field(default=None, ge=0)  # working days
    # when the decision clock passes with no word from sales: none (leave the lead with sales,
    # remind only) or renurture (recycle it with reason sla_no_decision)
    on_no_decision: Literal["none", "renurture"] = "none"


class WorkingTimeSpec(_Strict):
    """``working_time:`` the clock the commitments run on (docs/sla.md)."""

    timezone: str = "UTC"
    days: list[str] = Field(default_factory=lambda: list(DEFAULT_DAYS), min_length=1)
    hours: str = DEFAULT_HOURS
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(value, available_timezones())
            raise ValueError(
                f'"{value}" is not an IANA time zone{hint} (e.g. Europe/Berlin, America/New_York)'
            ) from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[str]) -> list[str]:
        seen: list[str] = []
        for day in days:
            text = str(day).strip().lower()
            name = text[:3] if text in _FULL else text
            if name not in WEEKDAYS:
                hint = did_you_mean(str(day), WEEKDAYS)
                raise ValueError(f'"{day}" is not a weekday{hint} (use: {", ".join(WEEKDAYS)})')
            if name in seen:
                raise ValueError(f'"{day}" is listed twice')
            seen.append(name)
        return seen

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        _parse_hours(value)  # its ValueError names the problem
        return value

    def clock(self) -> WorkingTime:
        return WorkingTime.of(self.timezone, self.days, self.hours, self.holidays)


class _AtKey(ValueError):
    """A problem of one key of a mapping, placed at that key's line (yamlfile.explain)."""

    def __init__(self, key: str, message: str) -> None:
        self.problems = [((key,), message)]
        super().__init__(message)


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class SLA(_Strict):
    title: str = "Sales & marketing SLA"
    owners: dict[str, str] = Field(default_factory=dict)
    definitions: dict[str, str] = Field(default_factory=dict)
    sales_commitments: SalesCommitments = SalesCommitments()
    working_time: WorkingTimeSpec = WorkingTimeSpec()
    recycle_reasons: dict[str, RecycleReason] = Field(min_length=1)
    requalification: Requalification = Requalification()

    @field_validator("recycle_reasons")
    @classmethod
    def _not_reserved(cls, reasons: dict[str, RecycleReason]) -> dict[str, RecycleReason]:
        if NO_DECISION in reasons:
            raise _AtKey(
                NO_DECISION,
                f'"{NO_DECISION}" is the SLA\'s own reason (a lead recycled because sales gave no '
                "decision in time, sales_commitments.on_no_decision): name yours differently",
            )
        return reasons

    @property
    def reason_stages(self) -> dict[str, tuple[str, ...]]:
        """The reasons sales may give, with the stages each is given for."""
        return {code: tuple(reason.stages) for code, reason in self.recycle_reasons.items()}

    @property
    def own_reasons(self) -> dict[str, tuple[str, ...]]:
        """The reasons dripengine recycles with by itself under this SLA (not sales')."""
        return {NO_DECISION: NO_DECISION_STAGES}

    @property
    def known_reasons(self) -> list[str]:
        """Every reason a recycle may carry: sales' and the SLA's own (campaign audiences)."""
        return [*self.recycle_reasons, *self.own_reasons]

    @cached_property
    def clock(self) -> WorkingTime:
        """The working time the commitments are counted in."""
        return self.working_time.clock()


def load_sla(path: Path) -> SLA:
    """The SLA in ``path``; raises :class:`SLAError` listing every problem (``file:line: ...``)."""
    if not path.is_file():
        raise SLAError(
            f"{path} does not exist: `drip init` writes one, or set paths.sla in drip.toml"
        )
    document, errors = read_yaml(
        path,
        str(path),
        needs="an SLA needs at least recycle_reasons",
        must_be="an SLA file must be a mapping of sections "
        "(recycle_reasons: ..., requalification: ...)",
    )
    if document is not None:
        # an unknown key usually explains the "missing" one beside it (a typo): report it first
        sla, errors = validate(document, SLA, unknown_first=True)
        if sla is not None:
            return sla
    raise SLAError(errors=errors)


def render_markdown(sla: SLA) -> str:
    """The SLA as a document people read in a meeting."""
    out = [f"# {sla.title}", ""]
    if sla.owners:
        out += ["Owners: " + "; ".join(f"{team}: {who}" for team, who in sla.owners.items()), ""]
    if sla.definitions:
        out += ["## Definitions", ""]
        for stage, text in sla.definitions.items():
            out += [f"- **{label(stage)}**: {text.strip()}"]
        out.append("")
    commitments = sla.sales_commitments
    if commitments.first_touch_hours is not None or commitments.decision_days is not None:
        out += ["## What sales commits to", ""]
        if commitments.first_touch_hours is not None:
            out.append(
                f"- First touch on a new MQL within {commitments.first_touch_hours} working hours."
            )
        if commitments.decision_days is not None:
            out.append(
                f"- Accept or recycle it within {commitments.decision_days} working days, "
                "with a reason below."
            )
            if commitments.on_no_decision == "renurture":
                out.append(
                    f"- With no decision by then, marketing takes the lead back into nurture "
                    f"(reason `{NO_DECISION}`)."
                )
        out += [f"- Working time: {_working_time(sla.working_time)}.", ""]
    out += [
        "## Reasons a lead comes back to marketing",
        "",
        "| code | reason | from stages | may requalify |",
        "| --- | --- | --- | --- |",
    ]
    for code, reason in sla.recycle_reasons.items():
        stages = ", ".join(label(s) for s in reason.stages)
        out.append(
            f"| `{code}` | {reason.label} | {stages} | {'yes' if reason.may_requalify else 'never'} |"
        )
    rule = sla.requalification
    out += [
        "",
        "## When a recycled lead goes back to sales",
        "",
        f"- Behaviour score at least **{rule.score:g}** and fit grade **{rule.min_fit}** or better.",
    ]
    if rule.score_if_recycled_before is not None:
        out.append(
            f"- A lead recycled more than once needs a score of at least "
            f"**{rule.score_if_recycled_before:g}**."
        )
    never = [code for code, reason in sla.recycle_reasons.items() if not reason.may_requalify]
    if never:
        out.append(f"- Never requalified: {', '.join(f'`{c}`' for c in never)}.")
    return "\n".join(out) + "\n"


def _working_time(spec: WorkingTimeSpec) -> str:
    days = ", ".join(day.capitalize() for day in spec.days)
    text = f"{days}, {spec.hours.replace('-', ' to ')} ({spec.timezone})"
    if spec.holidays:
        text += "; holidays: " + ", ".join(f"{day:%d %b %Y}" for day in spec.holidays)
    return text
