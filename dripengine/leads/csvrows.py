"""Lead rows from a CSV file: header mapping and per-row validation. Pure: no database.

The header names the columns; they are normalised (stripped, lower-cased, runs of spaces and hyphens
become ``_``) and a few common aliases are mapped (``E-mail`` -> ``email``, ``Surname`` ->
``last_name``, ...). Columns that are Lead fields fill those fields; every other column becomes a
key of ``attributes``. Every row becomes either a :class:`LeadRow` or a :class:`RowError` that names
the row's physical line in the file and what to fix.
"""

from __future__ import annotations

import csv
import difflib
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from os import PathLike
from pathlib import Path
from typing import NamedTuple, Protocol, TextIO

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import ImportFileError
from dripengine.funnel.stages import STAGES
from dripengine.storage.models import CONTACT_FIELDS, Lead
from dripengine.storage.textlimits import text_problem

__all__ = [
    "ALIASES",
    "FIELDS",
    "CsvRecord",
    "LeadRow",
    "RowChecker",
    "RowError",
    "csv_rows",
    "lead_rows",
    "normalise_header",
    "parse_mappings",
    "read_csv_records",
    "read_csv_rows",
]

# Lead fields a column can fill (``email`` and ``stage`` are handled on their own).
FIELDS: tuple[str, ...] = (*CONTACT_FIELDS, "consent")
ALIASES: dict[str, str] = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "firstname": "first_name",
    "first": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "last": "last_name",
    "organisation": "company",
    "organization": "company",
    "company_name": "company",
    "job_title": "title",
    "tz": "timezone",
    "time_zone": "timezone",
    "phone_number": "phone",
}
DELIMITERS = (",", ";", "\t")
_KNOWN = frozenset((*FIELDS, "email", "stage"))
_MAX_LENGTH: dict[str, int] = {
    name: Lead.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in FIELDS
}
_SPACES = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class RowError:
    """A row that was not imported: its physical line, its address (``""`` if none) and why."""

    line: int
    email: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data row of a CSV file: its first physical line and its values by column name."""

    line: int
    values: dict[str, str]
    surplus: int = 0  # fields beyond the header's columns (not in ``values``)
    problem: str | None = None  # the row could not be read as CSV (then ``values`` is empty)


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


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


@lru_cache(maxsize=1024)
def normalise_header(name: str) -> str:
    """``" E-Mail "`` -> ``"email"``; ``"Job Title"`` -> ``"title"``; others just normalised."""
    key = _SPACES.sub("_", name.strip().lower())
    return ALIASES.get(key, key)


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


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a file: whichever of ``,`` ``;`` and tab its header line uses most."""
    best_count, best = max((header_line.count(c), c) for c in reversed(DELIMITERS))
    return best if best_count else ","


def read_header(header: Sequence[str], *, source: str) -> list[str]:
    """The normalised column names (``""`` for an unnamed column); duplicates are refused."""
    names = [normalise_header(name) for name in header]
    originals: dict[str, list[str]] = {}
    for original, name in zip(header, names, strict=True):
        if name:
            originals.setdefault(name, []).append(original.strip())
    duplicates = [
        f"{', '.join(given)} (all mean {name})"
        for name, given in originals.items()
        if len(given) > 1
    ]
    if duplicates:
        raise ImportFileError(
            f"{source}: duplicate columns: {'; '.join(duplicates)}; keep one of each"
        )
    return names


Row = tuple[int, "list[str] | str"]  # the physical line a row starts on, its fields (or why not)


def csv_rows(lines: Iterable[str], *, source: str) -> tuple[list[str], Iterator[Row]]:
    """The normalised header and the rows of a CSV file's text lines (opened with ``newline=""``).

    Raises :class:`ImportFileError` for an empty file or duplicate columns. Blank lines (and
    lines of delimiters only) are skipped; a row's line is the physical line it starts on,
    multi-line quoted fields counted.
    """
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None or not first.strip():
        raise ImportFileError(
            f"{source}: the file is empty; its first line must name the columns "
            "(e.g. email,first_name,last_name,company)"
        )
    first = first.removeprefix("\ufeff")
    reader = csv.reader(chain([first], iterator), delimiter=sniff_delimiter(first))
    header = read_header(next(reader), source=source)
    return header, _numbered(reader)


def _numbered(reader: _Reader) -> Iterator[Row]:
    """``(line, fields)`` per row; ``(line, why)`` for a row the reader could not read (a field
    over its 131,072-character limit, say): the rows after it are read as usual."""
    line = reader.line_num
    rows = iter(reader)
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            start, line = line + 1, reader.line_num
            yield start, _unreadable(exc)
            continue
        start, line = line + 1, reader.line_num
        if any(values):  # else a blank line, or one of delimiters only (Excel writes those)
            yield start, values


def _unreadable(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a field is longer than {csv.field_size_limit():,} characters; "
            "shorten it (or check for an unclosed double quote)"
        )
    return f"cannot be read as CSV: {exc}"


def read_csv_rows(path: str | PathLike[str]) -> tuple[list[str], Iterator[Row]]:
    """The normalised header and the rows of the CSV file at ``path``.

    UTF-8 with or without a BOM; the delimiter is sniffed (``,`` ``;`` or tab). The header is
    checked now; the rows are read lazily, the file closed when they are exhausted.
    """
    path = Path(path)
    with _open(path) as handle:
        header, _ = csv_rows(_decoded(handle, path), source=str(path))
    return header, _rows_of(path)


def _rows_of(path: Path) -> Iterator[Row]:
    with _open(path) as handle:
        _, rows = csv_rows(_decoded(handle, path), source=str(path))
        yield from rows


def read_csv_records(path: str | PathLike[str]) -> tuple[list[str], Iterator[CsvRecord]]:
    """Like :func:`read_csv_rows`, each row as a :class:`CsvRecord` of values by column name."""
    header, rows = read_csv_rows(path)
    return header, _records(header, rows)


def _records(header: list[str], rows: Iterable[Row]) -> Iterator[CsvRecord]:
    width = len(header)
    named = [(i, name) for i, name in enumerate(header) if name]
    for line, values in rows:
        if isinstance(values, str):
            yield CsvRecord(line, {}, problem=values)
            continue
        found = {name: values[i] for i, name in named if i < len(values)}
        yield CsvRecord(line, found, max(len(values) - width, 0))


def _open(path: Path) -> TextIO:
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror}") from None


def _decoded(handle: TextIO, path: Path) -> Iterator[str]:
    """The lines of ``handle``, with a decoding error turned into a message that names the fix."""
    try:
        yield from handle
    except UnicodeDecodeError:
        raise ImportFileError(
            f"{path}: line {_first_bad_line(path)} is not UTF-8; "
            'save the file as "CSV UTF-8" and try again'
        ) from None


def _first_bad_line(path: Path) -> int:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


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
