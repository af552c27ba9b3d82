"""Comparing two proportions: the lift of a holdout test and the winner of an A/B test. Pure.

Two methods, both standard and both named in what they return so a reader can check them:

- the **difference** ``p1 - p2`` with its confidence interval by Newcombe's hybrid score method
  (Newcombe 1998, method 10: Wilson intervals of each proportion, combined). Unlike the Wald
  interval it stays inside [-1, 1] and keeps its coverage with small counts and rates near 0;
- the **p-value** of the two-sided two-proportion z-test with the pooled standard error.

Only the standard library: ``statistics.NormalDist`` gives the normal quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["DIFFERENCE_METHOD", "TEST_METHOD", "Comparison", "compare", "wilson"]

DIFFERENCE_METHOD = "newcombe-wilson"
TEST_METHOD = "two-proportion z-test (pooled)"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Group 1 against group 2: rates, the difference with its interval, and the test."""

    successes: tuple[int, int]
    trials: tuple[int, int]
    rates: tuple[float | None, float | None]  # None: the group is empty
    difference: float | None  # rate 1 - rate 2; None when either group is empty
    low: float | None
    high: float | None
    confidence: float
    p_value: float | None  # two-sided; None when the test cannot be made (an empty group)
    method: str = DIFFERENCE_METHOD
    test: str = TEST_METHOD

    def significant(self) -> bool:
        """Group 1 differs from group 2 at the confidence asked (the interval excludes 0)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / trials``."""
    _check(successes, trials, confidence)
    if trials == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def compare(
    successes1: int, trials1: int, successes2: int, trials2: int, confidence: float = 0.95
) -> Comparison:
    """Group 1 (``successes1`` of ``trials1``) against group 2."""
    _check(successes1, trials1, confidence)
    _check(successes2, trials2, confidence)
    rate1 = successes1 / trials1 if trials1 else None
    rate2 = successes2 / trials2 if trials2 else None
    if rate1 is None or rate2 is None:
        return Comparison(
            (successes1, successes2), (trials1, trials2), (rate1, rate2), None, None, None,
            confidence, None,
        )  # fmt: skip
    low1, high1 = wilson(successes1, trials1, confidence)
    low2, high2 = wilson(successes2, trials2, confidence)
    difference = rate1 - rate2
    low = difference - math.sqrt((rate1 - low1) ** 2 + (high2 - rate2) ** 2)
    high = difference + math.sqrt((high1 - rate1) ** 2 + (rate2 - low2) ** 2)
    return Comparison(
        successes=(successes1, successes2),
        trials=(trials1, trials2),
        rates=(rate1, rate2),
        difference=difference,
        low=max(-1.0, low),
        high=min(1.0, high),
        confidence=confidence,
        p_value=_p_value(successes1, trials1, successes2, trials2),
    )


def _p_value(successes1: int, trials1: int, successes2: int, trials2: int) -> float:
    pooled = (successes1 + successes2) / (trials1 + trials2)
    variance = pooled * (1 - pooled) * (1 / trials1 + 1 / trials2)
    difference = successes1 / trials1 - successes2 / trials2
    if variance == 0:
        return 1.0 if difference == 0 else 0.0
    z = abs(difference) / math.sqrt(variance)
    return 2 * (1 - NormalDist().cdf(z))


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _check(successes: int, trials: int, confidence: float) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"{successes} successes of {trials} trials: need 0 <= successes <= trials")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence}: give a share between 0 and 1, such as 0.95")
