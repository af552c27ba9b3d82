"""Sales touches: a rep called, emailed or met a lead. Reported by the CRM (``POST /api/touches``)
or from a file (``drip touches import``); both go through here.

A touch names a lead dripengine has: an unknown address is refused with the nearest known ones
(did you mean …?), never dropped in silence and never made a new lead. The same touch (lead, kind,
time) reported again is a *duplicate*, stored once. ``at`` is an ISO 8601 time with its offset
(``2026-12-01T10:30:00+01:00``, ``…Z``); without one it is refused, as is a time more than
:data:`FUTURE_SLACK` ahead of now; no ``at`` at all means now. Each touch gets its own outcome
(stored, duplicate, refused with the reason and the fix); the good ones around a bad one are kept.

What a touch does is the send policy's (:mod:`dripengine.sending.policy`: the quiet period, the
weekly cap) and the SLA's; this module only records them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError, ImportFileError
from dripengine.leads.csvfile import read_csv_records
from dripengine.leads.nearest import nearest_addresses
from dripengine.storage import Engine
from dripengine.storage.events import lead_ids_by_email
from dripengine.storage.textlimits import text_problem
from dripengine.storage.touches import TOUCH_LIMITS, insert_touch
from dripengine.suggest import did_you_mean, did_you_mean_any

KINDS = ("call", "email", "meeting")
FIELDS = ("email", "kind", "at", "actor", "rep", "note")  # rep: another name for actor
FUTURE_SLACK = timedelta(minutes=5)  # clocks differ: a touch this far ahead is still taken
NOTE_LIMIT = 10_000  # characters, as /api/feedback and /api/recycle take a note
SUGGESTED = 20  # unknown addresses given their nearest known ones, per call (the rest: no hint)
AT_EXAMPLE = "2026-12-01T10:30:00+01:00 or 2026-12-01T09:30:00Z"


class TouchError(DripError):
    """That touch cannot be recorded."""


@dataclass(frozen=True)
class Touch:
    email: str  # normalised
    kind: str
    at: datetime  # aware UTC
    actor: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class TouchResult:
    where: int  # the CSV line, or the index in an API array
    email: str
    kind: str
    at: datetime | None
    outcome: str  # stored | duplicate | refused
    message: str

    @property
    def line(self) -> int:  # a CSV row's line (cli.problems prints file:line: message)
        return self.where

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "kind": self.kind,
            "at": self.at.isoformat() if self.at else None,
            "outcome": self.outcome,
            "message": self.message,
        }


@dataclass
class TouchReport:
    results: list[TouchResult] = field(default_factory=list)
    seconds: float = 0.0
    committed: bool = True  # False: strict, and a touch was refused: nothing was kept

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def refused(self) -> list[TouchResult]:
        return [r for r in self.results if r.outcome == "refused"]

    def counts(self) -> dict[str, int]:
        return {
            "stored": self.count("stored"),
            "duplicates": self.count("duplicate"),
            "refused": self.count("refused"),
        }


def _shown(value: str, limit: int = 60) -> str:
    """A value quoted in a message: repr (control characters escaped), long ones cut."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def parse_at(value: Any, now: datetime) -> datetime:
    """``at`` as aware UTC: ISO 8601 with an offset; None or empty: ``now``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    if not isinstance(value, str):
        raise TouchError(f"at: expected an ISO 8601 time as a string (e.g. {AT_EXAMPLE})")
    text = value.strip()
    try:
        if not text.isprintable() or len(text) > 64:  # fromisoformat lets a NUL through
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TouchError(
            f"at: {_shown(text)} is not an ISO 8601 time (e.g. {AT_EXAMPLE})"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TouchError(
            f"at: {_shown(text)} has no time zone; add its offset, e.g. {text}Z for UTC "
            "or +01:00 for Berlin in winter"
        )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise TouchError(f"at: {_shown(text)} is outside the calendar") from None
    if moment > now + FUTURE_SLACK:
        raise TouchError(
            f"at: {moment:%Y-%m-%d %H:%M} UTC is in the future (now is {now:%Y-%m-%d %H:%M} "
            "UTC); report a touch once it happened, with the time it happened"
        )
    return moment


def touch_from(values: Mapping[str, Any], now: datetime) -> Touch:
    """The touch a JSON object or a CSV row describes; :class:`TouchError` naming the field and
    the fix (unknown fields get "did you mean …?")."""
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        name = str(unknown[0])
        raise TouchError(
            f"{_shown(name, 40)}: unknown field{did_you_mean(name, FIELDS)} "
            f"(accepted: {', '.join(FIELDS)})"
        )
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise TouchError(f"{key}: expected a string, not {type(value).__name__}")
    raw_email = (values.get("email") or "").strip()
    if not raw_email:
        raise TouchError("email: missing; name the lead the rep touched")
    try:
        email = normalise_email(raw_email)
    except InvalidEmail as exc:
        raise TouchError(f"email: {_shown(raw_email)} is not an email address: {exc}") from None
    kind = (values.get("kind") or "").strip().lower()
    if not kind:
        raise TouchError(f"kind: missing; one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise TouchError(
            f"kind: {_shown(kind, 30)} is not a kind of touch{did_you_mean(kind, KINDS)} "
            f"(use one of: {', '.join(KINDS)})"
        )
    actor = _actor(values)
    note = values.get("note") or None
    if note is not None:
        problem = text_problem("note", note, NOTE_LIMIT)
        if problem:
            raise TouchError(problem)
    return Touch(email, kind, parse_at(values.get("at"), now), actor, note)


def _actor(values: Mapping[str, Any]) -> str | None:
    actor = (values.get("actor") or "").strip() or None
    rep = (values.get("rep") or "").strip() or None
    if actor and rep and actor != rep:
        raise TouchError(
            f"actor and rep disagree ({_shown(actor, 40)}, {_shown(rep, 40)}); give one"
        )
    actor = actor or rep
    if actor is not None:
        problem = text_problem("actor", actor, TOUCH_LIMITS.get("actor"))
        if problem:
            raise TouchError(problem)
    return actor


def record_touches(
    engine: Engine,
    items: Sequence[tuple[int, Touch | TouchError, str]],
    now: datetime,
    *,
    source: str,
    strict: bool = False,
    place: Callable[[int], str] = "line {}".format,
) -> TouchReport:
    """Store each touch of ``items`` (``(where, touch or why not, email as given)``), in one
    transaction; ``strict``: nothing is kept if any is refused. ``place`` names a
    ``where`` in a message ("line 4", "[2]")."""
    started = time.perf_counter()
    report = TouchReport()
    with engine.connect() as connection:
        emails = sorted({t.email for _, t, _ in items if isinstance(t, Touch)})
        ids = lead_ids_by_email(connection, emails)
        unknown = [e for e in emails if e not in ids][:SUGGESTED]
        nearby = nearest_addresses(connection, unknown) if unknown else {}
        seen: dict[tuple[int, str, datetime], int] = {}
        for where, touch, given in items:
            if isinstance(touch, TouchError):
                report.results.append(TouchResult(where, given, "", None, "refused", touch.message))
                continue
            lead_id = ids.get(touch.email)
            if lead_id is None:
                why = f"no lead {touch.email}{did_you_mean_any(nearby.get(touch.email, []))}"
                why += "; a touch is kept only for a lead dripengine has (import it first)"
                report.results.append(_result(where, touch, "refused", why))
                continue
            key = (lead_id, touch.kind, touch.at)
            if key in seen:
                report.results.append(
                    _result(where, touch, "duplicate", f"the same touch as {place(seen[key])}")
                )
                continue
            seen[key] = where
            stored = insert_touch(connection, _row(lead_id, touch, source, now))
            if stored is None:
                report.results.append(_result(where, touch, "duplicate", "already recorded"))
            else:
                report.results.append(_result(where, touch, "stored", "recorded"))
        if strict and report.refused:
            connection.rollback()
            report.committed = False
        else:
            connection.commit()
    report.seconds = time.perf_counter() - started
    return report


def _result(where: int, touch: Touch, outcome: str, message: str) -> TouchResult:
    return TouchResult(where, touch.email, touch.kind, touch.at, outcome, message)


def _row(lead_id: int, touch: Touch, source: str, now: datetime) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "kind": touch.kind,
        "at": touch.at,
        "actor": touch.actor,
        "source": source,
        "note": touch.note,
        "created_at": now,
    }


def read_touch_file(path: Path, now: datetime) -> list[tuple[int, Touch | TouchError, str]]:
    """The touches of a CSV file (columns email, kind, at, rep or actor, note), by line; an
    unknown or missing column refuses the file, a bad row is refused on its own."""
    header, records = read_csv_records(path)
    for name in header:
        if name and name not in FIELDS:
            raise ImportFileError(
                f"{path}: {_shown(name, 40)} is not a column of touches{did_you_mean(name, FIELDS)}"
                f" (the columns: email, kind, at, rep, note)"
            )
    missing = [c for c in ("email", "kind") if c not in header]
    if missing:
        raise ImportFileError(
            f"{path}: no {' or '.join(missing)} column; the columns: email, kind, at, rep, note"
        )
    items: list[tuple[int, Touch | TouchError, str]] = []
    for record in records:
        given = record.values.get("email", "").strip()
        if record.problem is not None:
            items.append((record.line, TouchError(record.problem), given))
        elif record.surplus:
            why = f"{record.surplus} more field(s) than the header has columns; quote values "
            items.append((record.line, TouchError(why + "that contain the delimiter"), given))
        else:
            values = {k: v for k, v in record.values.items() if k}
            items.extend(parse_all([(record.line, values)], now))
    return items


def parse_all(
    rows: Iterable[tuple[int, Mapping[str, Any]]], now: datetime
) -> list[tuple[int, Touch | TouchError, str]]:
    """Each row parsed, or why not, with the address as given (for the report)."""
    parsed: list[tuple[int, Touch | TouchError, str]] = []
    for where, values in rows:
        given = values.get("email")
        given = given.strip() if isinstance(given, str) else ""
        try:
            parsed.append((where, touch_from(values, now), given))
        except TouchError as exc:
            parsed.append((where, exc, given))
    return parsed


__all__ = [
    "FIELDS",
    "KINDS",
    "NOTE_LIMIT",
    "Touch",
    "TouchError",
    "TouchReport",
    "TouchResult",
    "parse_all",
    "parse_at",
    "read_touch_file",
    "record_touches",
    "touch_from",
]
