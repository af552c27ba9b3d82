"""How well the score predicted what sales did with the leads dripengine handed back. Pure.

The unit is a hand-back (one Handoff) with feedback given in the window: *accepted* when sales
took it (``accepted``, ``won`` or ``lost``: a loss comes after an acceptance), *rejected* when it
came back. The counts per group (overall, score band and fit grade at the hand-back, campaign,
recycle reason) are aggregated by the database (:mod:`dripengine.scoring.review_queries`); this module
turns them into rates, sweeps the score threshold over the (few) hand-backs, and counts which event
types and link tags the accepted and the rejected ones carried.

No claim on a small sample: with fewer than :data:`MIN_TOTAL` hand-backs no rate, no threshold and
no signal is stated, only the counts; a group with fewer than :data:`MIN_GROUP` gets its counts and
"too few to say".

The threshold rule: for each score ``t`` seen at a hand-back, hand back only those at ``t`` or
above; keep the ``t`` with the most *accepted minus rejected* (each rejection costs sales about what
an acceptance is worth), the lowest such ``t`` on a tie (the most volume). Only raising the bar can
be judged: leads below the threshold in force were never handed back, so nothing says how sales
would have taken them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

MIN_TOTAL = 20  # hand-backs with feedback before any claim is made
MIN_GROUP = 5  # hand-backs in a group before its rate is stated
BAND_EDGES: tuple[int, ...] = (50, 60, 70, 80, 90)  # score bands: <50, 50-59, ..., 90+
TOO_FEW = "too few to say"
GROUPINGS: tuple[str, ...] = ("overall", "score band", "fit grade", "campaign", "recycle reason")


def band_label(score: float | None) -> str:
    """The score band a hand-back falls in (the same bands the database groups by)."""
    if score is None:
        return "unknown"
    if score < BAND_EDGES[0]:
        return f"<{BAND_EDGES[0]}"
    for low, high in pairwise(BAND_EDGES):
        if score < high:
            return f"{low}-{high - 1}"
    return f"{BAND_EDGES[-1]}+"


def band_labels() -> list[str]:
    """Every band, lowest first (a band with no hand-backs is not listed)."""
    return [band_label(BAND_EDGES[0] - 1), *(band_label(edge) for edge in BAND_EDGES)]


@dataclass(frozen=True)
class Counts:
    """One group as the database counted it."""

    key: str
    handed: int
    accepted: int
    won: int = 0


@dataclass(frozen=True)
class HandBack:
    """One hand-back with feedback: the score and fit it was handed back with, sales' verdict, and
    the event types and link tags in its evidence."""

    score: float | None
    fit: str | None
    accepted: bool
    event_types: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GroupRow:
    grouping: str
    key: str
    handed: int
    accepted: int
    rejected: int
    won: int
    rate: float | None  # accepted / handed; None when the sample is too small to say
    note: str = ""


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    handed: int
    accepted: int
    rejected: int
    precision: float  # accepted / handed

    @property
    def net(self) -> int:
        return self.accepted - self.rejected


@dataclass(frozen=True)
class SignalRow:
    kind: str  # event | tag
    name: str
    accepted_with: int  # accepted hand-backs whose evidence has it
    rejected_with: int
    share_of_accepted: float | None  # accepted_with / all accepted
    share_of_rejected: float | None
    rate: float | None  # acceptance rate of the hand-backs that had it
    note: str = ""


@dataclass(frozen=True)
class Review:
    since: datetime
    now: datetime
    total: int  # hand-backs with feedback in the window
    enough: bool  # total >= MIN_TOTAL: claims are made
    groups: list[GroupRow]
    sla_threshold: float
    current: ThresholdRow | None = None  # everything that was handed back
    best: ThresholdRow | None = None  # the rule's pick (None: too few, or no scores)
    sweep: list[ThresholdRow] = field(default_factory=list)
    signals: list[SignalRow] = field(default_factory=list)
    min_total: int = MIN_TOTAL
    min_group: int = MIN_GROUP

    def advice(self) -> list[str]:
        """Plain sentences a marketer can act on (or why there are none)."""
        if self.total == 0:
            return [
                "No feedback in this window: record sales' verdicts with `drip feedback EMAIL "
                "--accepted` / `--rejected --reason R` (or POST /api/feedback)."
            ]
        if not self.enough:
            return [
                f"{self.total} hand-back(s) with feedback: {TOO_FEW} (a claim needs at least "
                f"{self.min_total}); the counts are shown as they are."
            ]
        overall = next(row for row in self.groups if row.grouping == "overall")
        lines = [
            f"{overall.accepted} of {overall.handed} hand-backs accepted ({overall.rate:.0%})."
        ]
        best = self.best
        if self.current is None or best is None:
            lines.append("No scores at the hand-backs: no threshold to judge.")
        elif best.threshold <= self.current.threshold:
            lines.append(
                "Raising the score threshold would not have helped: every higher bar cuts at "
                "least as many accepted hand-backs as rejected ones."
            )
        else:
            cut = self.current.handed - best.handed
            lost = self.current.accepted - best.accepted
            lines.append(
                f"A score threshold of {best.threshold:g} would have handed back {best.handed} "
                f"instead of {self.current.handed} ({cut} fewer, {lost} of them accepted) with "
                f"{best.accepted} accepted ({best.precision:.0%} instead of "
                f"{self.current.precision:.0%}); the SLA's threshold is {self.sla_threshold:g}."
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        def threshold(row: ThresholdRow | None) -> dict[str, Any] | None:
            if row is None:
                return None
            return {**row.__dict__, "net": row.net}

        return {
            "since": self.since.isoformat(),
            "now": self.now.isoformat(),
            "hand_backs": self.total,
            "enough": self.enough,
            "min_total": self.min_total,
            "min_group": self.min_group,
            "groups": [row.__dict__ for row in self.groups],
            "sla_threshold": self.sla_threshold,
            "threshold": {
                "rule": "max accepted - rejected; lowest on a tie",
                "current": threshold(self.current),
                "best": threshold(self.best),
                "sweep": [threshold(row) for row in self.sweep],
            },
            "signals": [row.__dict__ for row in self.signals],
            "advice": self.advice(),
        }


def group_rows(
    grouping: str, counts: Iterable[Counts], *, enough: bool, min_group: int = MIN_GROUP
) -> list[GroupRow]:
    rows = []
    for c in counts:
        small = not enough or c.handed < min_group
        rows.append(
            GroupRow(
                grouping=grouping,
                key=c.key,
                handed=c.handed,
                accepted=c.accepted,
                rejected=c.handed - c.accepted,
                won=c.won,
                rate=None if small or not c.handed else c.accepted / c.handed,
                note=TOO_FEW if small else "",
            )
        )
    return rows


def sweep(handbacks: Sequence[HandBack]) -> list[ThresholdRow]:
    """For each whole score seen at a hand-back (lowest first): what handing back only those at it
    or above would have given."""
    scored = [(h.score, h.accepted) for h in handbacks if h.score is not None]
    rows = []
    for t in sorted({float(int(score)) for score, _ in scored}):
        kept = [accepted for score, accepted in scored if score >= t]
        accepted = sum(kept)
        rows.append(
            ThresholdRow(t, len(kept), accepted, len(kept) - accepted, accepted / len(kept))
        )
    return rows


def best_threshold(rows: Sequence[ThresholdRow]) -> ThresholdRow | None:
    """The most accepted minus rejected; the lowest threshold on a tie."""
    best = None
    for row in rows:  # lowest first: a later one must be strictly better
        if best is None or row.net > best.net:
            best = row
    return best


def signals(
    handbacks: Sequence[HandBack], *, enough: bool, min_group: int = MIN_GROUP
) -> list[SignalRow]:
    accepted_total = sum(1 for h in handbacks if h.accepted)
    rejected_total = len(handbacks) - accepted_total
    rows = []
    for kind, names in (("event", "event_types"), ("tag", "tags")):
        seen: dict[str, list[int]] = {}
        for h in handbacks:
            for name in getattr(h, names):
                tally = seen.setdefault(name, [0, 0])
                tally[0 if h.accepted else 1] += 1
        ordered = sorted(seen.items(), key=lambda item: (-item[1][0], item[1][1], item[0]))
        for name, (with_accepted, with_rejected) in ordered:
            present = with_accepted + with_rejected
            small = not enough or present < min_group
            rows.append(
                SignalRow(
                    kind=kind,
                    name=name,
                    accepted_with=with_accepted,
                    rejected_with=with_rejected,
                    share_of_accepted=_share(with_accepted, accepted_total, enough),
                    share_of_rejected=_share(with_rejected, rejected_total, enough),
                    rate=None if small else with_accepted / present,
                    note=TOO_FEW if small else "",
                )
            )
    return rows


def _share(part: int, whole: int, enough: bool) -> float | None:
    return part / whole if enough and whole else None


def review(
    counts: Mapping[str, Sequence[Counts]],
    handbacks: Sequence[HandBack],
    *,
    since: datetime,
    now: datetime,
    sla_threshold: float,
    min_total: int = MIN_TOTAL,
    min_group: int = MIN_GROUP,
) -> Review:
    """The review from the database's group counts (keyed by :data:`GROUPINGS`) and the hand-backs."""
    total = len(handbacks)
    enough = total >= min_total
    groups: list[GroupRow] = []
    for grouping in GROUPINGS:
        groups += group_rows(grouping, counts.get(grouping, ()), enough=enough, min_group=min_group)
    if not enough:
        return Review(
            since,
            now,
            total,
            False,
            groups,
            sla_threshold,
            min_total=min_total,
            min_group=min_group,
        )
    rows = sweep(handbacks)
    current = rows[0] if rows else None
    return Review(
        since,
        now,
        total,
        True,
        groups,
        sla_threshold,
        current,
        best_threshold(rows),
        rows,
        signals(handbacks, enough=True, min_group=min_group),
        min_total,
        min_group,
    )


__all__ = [
    "BAND_EDGES",
    "GROUPINGS",
    "MIN_GROUP",
    "MIN_TOTAL",
    "TOO_FEW",
    "Counts",
    "GroupRow",
    "HandBack",
    "Review",
    "SignalRow",
    "ThresholdRow",
    "band_label",
    "band_labels",
    "best_threshold",
    "group_rows",
    "review",
    "signals",
    "sweep",
]
