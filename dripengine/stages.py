"""The lifecycle stages and the legal moves between them: the funnel's vocabulary, shared by the
campaign schema (audiences), the CSV reader (a lead's stage) and :mod:`dripengine.funnel`. Pure."""

from __future__ import annotations

from enum import StrEnum

from dripengine.exceptions import FunnelError


class Stage(StrEnum):
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    EVANGELIST = "evangelist"
    RECYCLED = "recycled"


STAGES: tuple[str, ...] = tuple(stage.value for stage in Stage)
RECYCLABLE: tuple[str, ...] = ("mql", "sal", "sql", "opportunity")
LABELS = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "MQL",
    "sal": "SAL",
    "sql": "SQL",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
    "recycled": "recycled",
}

# Forward moves through the funnel, the way back (recycled), and requalification (recycled -> mql).
# MQL and SAL -> customer: sales reports a handed-back lead won (`drip feedback --won`); the CRM's
# stages in between are not tracked here, and inventing them would be a false history.
LEGAL_MOVES: dict[str, frozenset[str]] = {
    "subscriber": frozenset({"lead", "mql"}),
    "lead": frozenset({"mql", "subscriber"}),
    "mql": frozenset({"sal", "sql", "customer", "recycled"}),
    "sal": frozenset({"sql", "customer", "recycled"}),
    "sql": frozenset({"opportunity", "customer", "recycled"}),
    "opportunity": frozenset({"customer", "recycled"}),
    "customer": frozenset({"evangelist"}),
    "evangelist": frozenset(),
    "recycled": frozenset({"mql", "recycled"}),
}


def label(stage: str) -> str:
    return LABELS.get(stage, stage)


def check_stage(stage: str) -> str:
    """Return ``stage`` normalised, or raise with the accepted names."""
    value = stage.strip().lower()
    if value not in STAGES:
        raise FunnelError(f'"{stage}" is not a stage (use one of: {", ".join(STAGES)})')
    return value


def check_move(from_stage: str, to_stage: str) -> None:
    allowed = LEGAL_MOVES[check_stage(from_stage)]
    if check_stage(to_stage) not in allowed:
        options = ", ".join(sorted(allowed)) or "none: it is the end of the funnel"
        raise FunnelError(
            f"a lead cannot move from {label(from_stage)} to {label(to_stage)} "
            f"(from {label(from_stage)}: {options})"
        )
