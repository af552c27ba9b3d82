"""A/B variants of a step: the ``variants:`` and ``pick_winner:`` fields, and which variant a lead
gets. Pure.

A step may list two or more variants, each with its own subject and/or template (the step's own
when a variant leaves one out) and a weight. :func:`assign` gives every lead one variant by a
stable hash of (normalised address, campaign id, step id): the same lead gets the same variant on
every run, on every worker and on both databases, and the shares follow the weights. Once a
winner is recorded (:mod:`dripengine.campaigns.winner` decides it), :func:`chosen` sends the
winner to everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dripengine.campaigns.experiment import point
from dripengine.campaigns.fields import Loc, Slug, SubjectTemplate, TemplatePath
from dripengine.suggest import did_you_mean

if TYPE_CHECKING:
    from dripengine.campaigns.schema import Step

__all__ = [
    "METRICS",
    "PickWinner",
    "Variant",
    "assign",
    "bucket",
    "chosen",
    "find_variant",
    "step_variant_problems",
    "subject_of",
    "template_of",
]

ID_LIMIT = 64  # message.variant's width

METRICS = ("human_click_rate", "human_open_rate", "reply_rate")
"""What a winner may be picked on: leads who clicked (a person, not a link scanner), opened (a
person, not a privacy proxy) or replied (not an auto-reply), over the emails sent."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Variant(_Model):
    """One version of a step's email: its subject and/or template, and its share of the leads."""

    id: Slug
    subject: SubjectTemplate | None = None
    template: TemplatePath | None = None
    weight: Annotated[float, Field(gt=0)] = 1.0

    @field_validator("id")
    @classmethod
    def _short_id(cls, value: str) -> str:
        if len(value) > ID_LIMIT:
            raise ValueError(f"{len(value)} characters; a variant id has at most {ID_LIMIT}")
        return value


class PickWinner(_Model):
    """Send only the best variant once it is significantly better than every other one."""

    metric: str
    min_sends: Annotated[int, Field(ge=1)]  # emails sent, per variant
    confidence: float = 0.95

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            hint = did_you_mean(value, METRICS)
            raise ValueError(f'unknown metric "{value}"{hint}; use {", ".join(METRICS)}')
        return value

    @field_validator("confidence", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value  # pydantic names the type
        if not 0.5 < value < 1:
            raise ValueError(
                f"{value} is not a confidence between 0.5 and 1 (use e.g. 0.95 for 95%)"
            )
        return float(value)


def step_variant_problems(step: Step) -> list[tuple[Loc, str]]:
    """What is wrong with a step's ``variants`` and ``pick_winner`` (locations from the step)."""
    problems: list[tuple[Loc, str]] = []
    variants = step.variants
    if variants is None:
        if step.pick_winner is not None:
            problems.append(
                (
                    ("pick_winner",),
                    "a winner needs variants to pick from: add variants, or remove it",
                )
            )
        return problems
    if len(variants) < 2:
        problems.append(
            (("variants",), "list at least two variants (or remove variants and use the step's)")
        )
    seen: dict[str, int] = {}
    emails: dict[tuple[str, str], int] = {}
    for index, variant in enumerate(variants):
        if variant.id in seen:
            problems.append(
                (
                    ("variants", index, "id"),
                    f'"{variant.id}" is already the id of variants[{seen[variant.id]}]; '
                    "variant ids must be unique within a step",
                )
            )
        else:
            seen[variant.id] = index
        email = (subject_of(step, variant), template_of(step, variant))
        if email in emails:
            other = emails[email]
            problems.append(
                (
                    ("variants", index),
                    f"sends the same subject and template as variants[{other}] "
                    f'("{variants[other].id}"): give it another subject or template',
                )
            )
        else:
            emails[email] = index
    return problems


def bucket(email: str, campaign_id: str, step_id: str) -> float:
    """Where a lead falls in [0, 1) for this step: sha256 of the trimmed, lower-cased address,
    the campaign id and the step id (the first 8 bytes, over 2**64)."""
    key = "\x00".join((email.strip().lower(), campaign_id, step_id))
    return point(key.encode("utf-8", "surrogatepass"))


def assign(email: str, campaign_id: str, step_id: str, variants: Sequence[Variant]) -> Variant:
    """The variant a lead gets by weight: the variants share [0, 1) in file order, each a slice
    as wide as its weight over the sum, and the lead's :func:`bucket` picks one."""
    if not variants:
        raise ValueError("no variants to choose from")
    point = bucket(email, campaign_id, step_id) * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]  # rounding at the very top of the range


def chosen(email: str, campaign_id: str, step: Step, winner: str | None) -> Variant | None:
    """The variant this lead is sent: the recorded winner while the step still lists it, else
    the lead's by :func:`assign`; None for a step without variants."""
    if not step.variants:
        return None
    if winner is not None:
        for variant in step.variants:
            if variant.id == winner:
                return variant
    return assign(email, campaign_id, step.id, step.variants)


def template_of(step: Step, variant: Variant | None) -> str:
    """The template a lead sent ``variant`` of ``step`` gets: the variant's, else the step's."""
    return (variant.template if variant else None) or step.template


def subject_of(step: Step, variant: Variant | None) -> str:
    """The subject a lead sent ``variant`` of ``step`` gets: the variant's, else the step's."""
    return (variant.subject if variant else None) or step.subject


def find_variant(step: Step, variant_id: str) -> Variant:
    """A variant of ``step`` by id; ValueError with did-you-mean and the ids there are."""
    variants = step.variants or []
    for variant in variants:
        if variant.id == variant_id:
            return variant
    if not variants:
        raise ValueError(f'step "{step.id}" has no variants (remove --variant)')
    known = ", ".join(v.id for v in variants)
    hint = did_you_mean(variant_id, (v.id for v in variants))
    raise ValueError(f'step "{step.id}" has no variant "{variant_id}"{hint} (variants: {known})')
