"""Lead rows from CSV rows or mappings: the columns a Lead fills, and per-row validation.

Columns that are Lead fields fill those fields; every other column becomes a key of
``attributes``. Every row becomes either a :class:`LeadRow` or a :class:`RowError` that names
the row's physical line in the file and what to fix. Reading the file itself (encoding,
delimiter, header names) is :mod:`dripengine.leads.csvfile`. Pure: no database.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import ImportFileError
from dripengine.leads.csvfile import Row, normalise_header
from dripengine.stages import STAGES
from dripengine.storage.models import CONTACT_FIELDS, Lead
from dripengine.storage.textlimits import text_problem

__all__ = [
    "FIELDS",
    "LeadRow",
    "RowChecker",
    "RowError",
    "lead_rows",
    "parse_mappings",
]

# Lead fields a column can fill (``email`` and ``stage`` are handled on their own).
FIELDS: tuple[str, ...] = (*CONTACT_FIELDS, "consent")
_KNOWN = frozenset((*FIELDS, "email", "stage"))
_MAX_LENGTH: dict[str, int] = {
    name: Lead.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in FIELDS
}


@dataclass(frozen=True)
class RowError:
    """A row that was not imported: its physical line, its address (``""`` if none) and why."""

    line: int
    email: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class LeadRow(NamedTuple):
    """A valid row: the normalised address, the non-empty Lead fields, the stage and attributes.

    A tuple of strings and dicts of strings, which the garbage collector stops tracking: batches of
    them then cost no full collections.
    """

    line: int
    email: str
    fields: dict[str, str]  # Lead field -> stripped, non-empty value
    stage: str | None
    attributes: dict[str, str]  # other column -> stripped, non-empty value


class RowChecker:
    """Validates rows one by one, remembering addresses to report duplicates within the input."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def check(self, line: int, items: Iterable[tuple[str, str | None]]) -> LeadRow | RowError:
        """One row from ``(column name, value)`` pairs, names already normalised."""
        email = stage = ""
        fields: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for name, raw in items:
            value = raw.strip() if raw else ""
            if not value:
                continue
            if "\x00" in value:
                return _nul(line, name)
            if name == "email":
                email = value
            elif name == "stage":
                stage = value
            elif name in _MAX_LENGTH:
                fields[name] = value
            elif name:
                attributes[name] = value
        return self.validate(line, email, stage, fields, attributes)

    def validate(
        self,
        line: int,
        raw_email: str,
        raw_stage: str,
        fields: dict[str, str],
        attributes: dict[str, str],
    ) -> LeadRow | RowError:
        """One row from its parts: ``fields`` and ``attributes`` hold stripped, non-empty values."""
        raw_email = raw_email.strip()
        if not raw_email:
            return RowError(line, "", "empty email; every row needs an address")
        try:
            email = normalise_email(raw_email)
        except InvalidEmail as exc:
            return RowError(line, raw_email, f'"{raw_email}" is not a valid email address: {exc}')
        first = self._seen.get(email)
        if first is not None:
            return RowError(line, email, f"{email} already appears on line {first}")
        stage = raw_stage.strip().lower() or None
        if stage is not None and stage not in STAGES:
            return RowError(
                line,
                email,
                f'"{raw_stage.strip()}" is not a stage; use one of: {", ".join(STAGES)}',
            )
        problem = _check_fields(fields)
        if problem:
            return RowError(line, email, problem)
        self._seen[email] = line
        return LeadRow(line, email, fields, stage, attributes)


def _nul(line: int, name: str) -> RowError:
    return RowError(line, "", f"{name or 'a column'} contains a NUL character; remove it")


def _check_fields(fields: dict[str, str]) -> str | None:
    """What is wrong with the fields (fixing the time zone's case), or None."""
    for name, value in fields.items():
        problem = text_problem(name, value, _MAX_LENGTH[name])
        if problem:
            return problem
    zone = fields.get("timezone")
    if zone is not None:
        canonical = _canonical_zone(zone)
        if canonical is None:
            hint = difflib.get_close_matches(zone, _zones(), n=1) or ["Europe/Berlin"]
            return f'"{zone}" is not an IANA time zone (e.g. {hint[0]})'
        fields["timezone"] = canonical
    return None


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    return {zone.lower(): zone for zone in _zones()}


@lru_cache(maxsize=4096)
def _canonical_zone(name: str) -> str | None:
    """The IANA name ``name`` means (its case corrected), or None if there is none."""
    return _zones_by_lower().get(name.lower())


def lead_rows(
    header: Sequence[str], rows: Iterable[Row], *, source: str
) -> Iterator[LeadRow | RowError]:
    """Lead rows from CSV rows; :class:`ImportFileError` now if there is no email column."""
    if "email" not in header:
        found = ", ".join(name for name in header if name) or "(none)"
        raise ImportFileError(f"{source}: no email column; found columns: {found}")
    return _lead_rows(list(header), rows)


def _lead_rows(header: list[str], rows: Iterable[Row]) -> Iterator[LeadRow | RowError]:
    width = len(header)
    email_at = header.index("email")
    stage_at = header.index("stage") if "stage" in header else None
    fields = [(i, name) for i, name in enumerate(header) if name in _MAX_LENGTH]
    attributes = [(i, name) for i, name in enumerate(header) if name and name not in _KNOWN]
    checker = RowChecker()
    for line, values in rows:
        if isinstance(values, str):
            yield RowError(line, "", values)
            continue
        if len(values) != width:
            if len(values) > width:
                yield RowError(
                    line,
                    "",
                    f"{len(values)} fields but the header has {width} columns; "
                    "put values that contain the delimiter in double quotes",
                )
                continue
            values = values + [""] * (width - len(values))
        if "\x00" in "".join(values):
            yield _nul(line, next(header[i] for i, v in enumerate(values) if "\x00" in v))
            continue
        yield checker.validate(
            line,
            values[email_at],
            "" if stage_at is None else values[stage_at],
            {name: value for i, name in fields if (value := values[i].strip())},
            {name: value for i, name in attributes if (value := values[i].strip())},
        )


def parse_mappings(
    rows: Iterable[Mapping[str, object]], *, first_line: int = 1
) -> Iterator[LeadRow | RowError]:
    """Lead rows from mappings of column name to value (names normalised as in a CSV header).

    Values other than strings are converted with ``str`` (``None`` is empty). Rows are numbered
    from ``first_line``.
    """
    checker = RowChecker()
    for line, row in enumerate(rows, start=first_line):
        yield checker.check(line, ((normalise_header(k), _text(v)) for k, v in row.items()))


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)
