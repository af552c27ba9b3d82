"""The SLA between marketing and sales (``sla.yaml``): definitions, recycle reasons, requalification.

Loaded once per command; :func:`render_markdown` prints it for ``drip sla``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dripengine.exceptions import SLAError
from dripengine.stages import RECYCLABLE, label
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


class SalesCommitments(_Strict):
    first_touch_hours: int | None = Field(default=None, ge=0)
    decision_days: int | None = Field(default=None, ge=0)


class SLA(_Strict):
    title: str = "Sales & marketing SLA"
    owners: dict[str, str] = Field(default_factory=dict)
    definitions: dict[str, str] = Field(default_factory=dict)
    sales_commitments: SalesCommitments = SalesCommitments()
    recycle_reasons: dict[str, RecycleReason] = Field(min_length=1)
    requalification: Requalification = Requalification()

    @property
    def reason_stages(self) -> dict[str, tuple[str, ...]]:
        return {code: tuple(reason.stages) for code, reason in self.recycle_reasons.items()}


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
            out.append(f"- First touch on a new MQL within {commitments.first_touch_hours} hours.")
        if commitments.decision_days is not None:
            out.append(
                f"- Accept or recycle it within {commitments.decision_days} days, with a reason below."
            )
        out.append("")
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
