"""The lift of a campaign's holdout test: how many recycled leads came back *because* of the
emails (docs/holdout.md).

Per campaign, the enrolments made in the window split into the **treated** group (mailed) and the
**holdout** group (enrolled, sent nothing); :mod:`dripengine.storage.holdout` counts each group's
leads, requalifications and SQLs. Two rates per group, and for each the difference treated -
holdout with its 95 % interval (Newcombe's hybrid score method) and the p-value of the pooled
two-proportion z-test, from :func:`dripengine.campaigns.significance.compare`:

- ``requalification_rate`` = requalified / leads;
- ``handback_to_sql_rate`` = sql / handed_back (``handed_back``: the requalified leads, each
  handed back to sales once).

A rate of an empty group is ``None``, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dripengine.campaigns.significance import TEST_METHOD, Comparison, compare
from dripengine.storage import Connection
from dripengine.storage import holdout as counted
from dripengine.storage.holdout import Span

__all__ = ["CONFIDENCE", "headline", "lift_by_campaign", "lift_of", "text_line"]

CONFIDENCE = 0.95
RATES = {
    "requalification_rate": ("requalified", "leads"),
    "handback_to_sql_rate": ("sql", "handed_back"),
}
EMPTY = {"leads": 0, "requalified": 0, "sql": 0}
ORDER = (
    "leads",
    "requalified",
    "requalification_rate",
    "handed_back",
    "sql",
    "handback_to_sql_rate",
)


def _group(counts: Mapping[str, int]) -> dict[str, Any]:
    group: dict[str, Any] = {
        "leads": counts["leads"],
        "requalified": counts["requalified"],
        "handed_back": counts["requalified"],
        "sql": counts["sql"],
    }
    for name, (numerator, denominator) in RATES.items():
        below = group[denominator]
        group[name] = round(group[numerator] / below, 4) if below else None
    return {key: group[key] for key in ORDER}


def _verdict(result: Comparison, holdout: int, treated: int) -> str:
    if holdout == 0:
        return "no holdout"
    if treated == 0:
        return "no treated leads"
    return "significant" if result.significant() else "not yet significant"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _difference(
    treated: Mapping[str, Any], holdout: Mapping[str, Any], rate: str
) -> dict[str, Any]:
    numerator, denominator = RATES[rate]
    result = compare(
        treated[numerator], treated[denominator], holdout[numerator], holdout[denominator],
        CONFIDENCE,
    )  # fmt: skip
    return {
        "difference": _rounded(result.difference),
        "ci95": None if result.low is None else [_rounded(result.low), _rounded(result.high)],
        "p_value": _rounded(result.p_value),
        "method": result.method,
        "p_value_method": TEST_METHOD,
        "verdict": _verdict(result, holdout[denominator], treated[denominator]),
    }


def lift_of(groups: Mapping[bool, Mapping[str, int]]) -> dict[str, Any]:
    """``holdout``, ``treated`` and ``lift`` of one campaign from its groups' counts."""
    holdout = _group(groups.get(True, EMPTY))
    treated = _group(groups.get(False, EMPTY))
    requalification = _difference(treated, holdout, "requalification_rate")
    low_high = requalification["ci95"]
    leads = treated["leads"]
    lift: dict[str, Any] = {
        "verdict": requalification["verdict"],
        "confidence": CONFIDENCE,
        # the treated leads that came back because of the emails: the difference times them
        "extra_requalified": None
        if requalification["difference"] is None
        else round(requalification["difference"] * leads, 1),
        "extra_requalified_ci95": None
        if low_high is None
        else [round(low_high[0] * leads, 1), round(low_high[1] * leads, 1)],
        "requalification_rate": requalification,
        "handback_to_sql_rate": _difference(treated, holdout, "handback_to_sql_rate"),
    }
    return {"holdout": holdout, "treated": treated, "lift": lift}


def lift_by_campaign(
    connection: Connection, span: Span, campaign: str | None = None
) -> dict[str, dict[str, Any]]:
    """{campaign: :func:`lift_of`} for every campaign with enrolments in the window."""
    return {
        name: lift_of(groups)
        for name, groups in sorted(counted.group_counts(connection, span, campaign).items())
    }


def _points(value: float) -> str:
    return f"{value * 100:+.1f} points"


def headline(campaign: str, result: Mapping[str, Any]) -> str:
    """One sentence a CFO reads: what the emails changed, how sure we are."""
    holdout, treated, lift = result["holdout"], result["treated"], result["lift"]
    verdict = lift["verdict"]
    if verdict == "no holdout":
        return f"{campaign}: no holdout group, so no lift can be measured (set holdout: 10%)."
    if verdict == "no treated leads":
        return f"{campaign}: not enough data yet: no mailed leads to compare with the holdout."
    rate = lift["requalification_rate"]
    low, high = rate["ci95"]
    said = (
        f"{campaign}: {treated['requalification_rate'] * 100:.1f}% of {treated['leads']:,} "
        f"mailed leads came back to sales against {holdout['requalification_rate'] * 100:.1f}% "
        f"of {holdout['leads']:,} sent nothing: {_points(rate['difference'])} "
        f"(95% interval {_points(low)} to {_points(high)})"
    )
    if verdict == "significant" and rate["difference"] > 0:
        extra = lift["extra_requalified"]
        return f"{said}. About {extra:,.0f} leads came back because of the emails."
    if verdict == "significant":
        return f"{said}. The emails lowered the rate: fewer leads came back than without them."
    return f"{said}. Not enough data yet to say the emails made a difference."


def text_line(campaign: str, result: Mapping[str, Any]) -> str:
    """``drip stats``'s line for one campaign: the headline with the SQL rates after it."""
    line = headline(campaign, result)
    sql = result["lift"]["handback_to_sql_rate"]
    if sql["difference"] is not None:
        low, high = sql["ci95"]
        line += (
            f" Hand-back -> SQL: {_points(sql['difference'])} "
            f"({_points(low)} to {_points(high)}, {sql['verdict']})."
        )
    return line
