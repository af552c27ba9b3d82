"""Is one variant of a step significantly better than every other? Pure.

The rule (docs/variants.md): once **every** variant has at least ``min_sends`` emails sent, the
variant with the highest rate of the metric wins if it is significantly better than **each** other
variant at the confidence asked, by :func:`dripengine.campaigns.significance.compare` (Newcombe's
interval of the difference excludes 0 *and* the pooled z-test's p-value is below 1 - confidence).
With more than two variants the best is compared with each of the others, so the confidence of
each comparison is raised by Bonferroni's correction (``1 - (1 - confidence) / comparisons``):
the chance of calling a winner that is not better stays at most ``1 - confidence``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dripengine.campaigns.significance import DIFFERENCE_METHOD, TEST_METHOD, compare

__all__ = ["CORRECTION", "Verdict", "judge"]

CORRECTION = "bonferroni"


@dataclass(frozen=True)
class Verdict:
    """The outcome of looking at a step's figures: a winner (with its reasons), or why not yet."""

    winner: str | None
    reason: str  # one sentence, for people
    detail: dict[str, Any]  # every figure that decided it (variant_winner.detail)


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def judge(
    variants: Sequence[str],
    counts: Mapping[str, tuple[int, int]],  # variant -> (successes, emails sent)
    *,
    metric: str,
    min_sends: int,
    confidence: float,
) -> Verdict:
    """The verdict on ``variants`` (ids in file order) given their counts."""
    comparisons = max(1, len(variants) - 1)
    each = 1 - (1 - confidence) / comparisons
    sent = {vid: counts.get(vid, (0, 0))[1] for vid in variants}
    hits = {vid: counts.get(vid, (0, 0))[0] for vid in variants}
    rates = {vid: _rate(hits[vid], sent[vid]) for vid in variants}
    figures = {
        vid: {"sent": sent[vid], "successes": hits[vid], "rate": _round(rates[vid])}
        for vid in variants
    }
    detail: dict[str, Any] = {
        "metric": metric,
        "min_sends": min_sends,
        "min_sends_per": "variant",
        "confidence": confidence,
        "correction": CORRECTION,
        "comparison_confidence": round(each, 6),
        "method": DIFFERENCE_METHOD,
        "test": TEST_METHOD,
        "variants": figures,
    }
    short = [vid for vid in variants if sent[vid] < min_sends]
    if short:
        waiting = ", ".join(f"{vid} {sent[vid]}/{min_sends}" for vid in short)
        return Verdict(None, f"collecting: sends per variant {waiting}", detail)
    best = max(variants, key=lambda vid: (rates[vid] or 0.0, -variants.index(vid)))
    against: list[dict[str, Any]] = []
    for other in variants:
        if other == best:
            continue
        c = compare(hits[best], sent[best], hits[other], sent[other], each)
        significant = (
            c.significant()
            and c.difference is not None
            and c.difference > 0
            and c.p_value is not None
            and c.p_value < 1 - each
        )
        against.append(
            {
                "variant": other,
                "difference": _round(c.difference),
                "low": _round(c.low),
                "high": _round(c.high),
                "p_value": _round(c.p_value),
                "significant": significant,
            }
        )
    detail["best"] = best
    detail["comparisons"] = against
    rate = _pct(rates[best])
    others = ", ".join(
        f"{a['variant']} {_pct(rates[a['variant']])} (p={_p(a['p_value'])})" for a in against
    )
    if all(a["significant"] for a in against):
        reason = (
            f"{best} wins on {metric}: {rate} against {others}, each variant with at least "
            f"{min_sends} sent, at {confidence:.0%} confidence"
        )
        detail["reason"] = reason
        return Verdict(best, reason, detail)
    undecided = [a["variant"] for a in against if not a["significant"]]
    return Verdict(
        None,
        f"no winner yet: {best} leads with {rate} against {others}, not significantly better "
        f"than {', '.join(undecided)} at {confidence:.0%}",
        detail,
    )


def _rate(successes: int, sent: int) -> float | None:
    return successes / sent if sent else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
