"""CSV rows to lead rows: header mapping, delimiters, line numbers and every row error. No database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dripengine.exceptions import ImportFileError
from dripengine.leads.csvfile import (
    csv_rows,
    normalise_header,
    read_csv_records,
    read_csv_rows,
    sniff_delimiter,
)
from dripengine.leads.csvrows import LeadRow, RowError, lead_rows, parse_mappings


def parse(text: str, source: str = "leads.csv") -> list[LeadRow | RowError]:
    header, rows = csv_rows(io.StringIO(text, newline=""), source=source)
    return list(lead_rows(header, rows, source=source))


def errors(text: str) -> list[str]:
    return [str(r) for r in parse(text) if isinstance(r, RowError)]


def good(text: str) -> list[LeadRow]:
    return [r for r in parse(text) if isinstance(r, LeadRow)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (" E-Mail ", "email"),
        ("Email Address", "email"),
        ("mail", "email"),
        ("FirstName", "first_name"),
        ("First Name", "first_name"),
        ("Surname", "last_name"),
        ("Organisation", "company"),
        ("Company Name", "company"),
        ("Job Title", "title"),
        ("TZ", "timezone"),
        ("Time-Zone", "timezone"),
        ("Phone Number", "phone"),
        ("Lead  Source - Detail", "lead_source_detail"),
    ],
)
def test_header_names_are_normalised_with_aliases(given: str, expected: str) -> None:
    assert normalise_header(given) == expected


def test_known_columns_fill_fields_and_others_become_attributes() -> None:
    (row,) = good(
        "E-mail,First Name,Surname,Organization,Job Title,TZ,Phone Number,Country,Source,Consent,Industry,Empty\n"
        "Jane@Acme.example, Jane ,Doe,Acme,CTO,europe/berlin,+49 30 1,DE,fair,opt_in, saas ,\n"
    )
    assert row == LeadRow(
        line=2,
        email="jane@acme.example",
        fields={
            "first_name": "Jane",
            "last_name": "Doe",
            "company": "Acme",
            "title": "CTO",
            "timezone": "Europe/Berlin",  # the IANA name's case, corrected
            "phone": "+49 30 1",
            "country": "DE",
            "source": "fair",
            "consent": "opt_in",
        },
        stage=None,
        attributes={"industry": "saas"},  # empty values are not stored
    )


@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_delimiter_is_sniffed(delimiter: str, name: str) -> None:
    text = delimiter.join(["email", "company", "note"]) + "\n"
    text += delimiter.join(["a@acme.example", "Acme, Inc." if delimiter != "," else "Acme", "x"])
    (row,) = good(text + "\n")
    assert row.fields["company"] == ("Acme, Inc." if delimiter != "," else "Acme")
    assert row.attributes == {"note": "x"}


def test_sniffing_prefers_the_most_frequent_delimiter() -> None:
    assert sniff_delimiter("email;name;company,inc;x\n") == ";"
    assert sniff_delimiter("email\n") == ","


def test_bom_is_ignored() -> None:
    (row,) = good("\ufeffemail,first_name\njane@acme.example,Jane\n")
    assert row.email == "jane@acme.example"


def test_line_numbers_count_physical_lines_across_quoted_newlines_and_blank_lines() -> None:
    text = (
        "email,note\n"  # 1
        'a@acme.example,"two\nlines"\n'  # 2-3
        "\n"  # 4: blank, skipped
        ",,\n"  # 5: delimiters only, skipped
        'bad@,"three\n\nlines"\n'  # 6-8
        "c@acme.example,x\n"  # 9
    )
    rows = parse(text)
    assert [r.line for r in rows] == [2, 6, 9]
    assert isinstance(rows[1], RowError)
    assert rows[0].attributes == {"note": "two\nlines"}  # type: ignore[union-attr]


def test_every_row_error_names_its_line_and_the_fix() -> None:
    text = (
        "email,timezone,stage,first_name\n"
        "jane@acme.example,,,\n"  # 2 ok
        "ja..ne@acme.example,,,\n"  # 3
        ",,,Nobody\n"  # 4
        "JANE@ACME.EXAMPLE,,,\n"  # 5
        "tz@acme.example,Europe/Berln,,\n"  # 6
        "st@acme.example,,prospect,\n"  # 7
        "wide@acme.example,,,x,extra\n"  # 8
        f"long@acme.example,,,{'x' * 201}\n"  # 9
        "nul@acme.example,,,a\x00b\n"  # 10
        "ok@acme.example,,MQL,\n"  # 11 ok, stage lower-cased
    )
    assert errors(text) == [
        'line 3: "ja..ne@acme.example" is not a valid email address: '
        "An email address cannot have two periods in a row.",
        "line 4: empty email; every row needs an address",
        "line 5: jane@acme.example already appears on line 2",
        'line 6: "Europe/Berln" is not an IANA time zone (e.g. Europe/Berlin)',
        'line 7: "prospect" is not a stage; use one of: subscriber, lead, mql, sal, sql, '
        "opportunity, customer, evangelist, recycled",
        "line 8: 5 fields but the header has 4 columns; put values that contain the delimiter "
        "in double quotes",
        "line 9: first_name is 201 characters long; the limit is 200",
        "line 10: first_name contains a NUL character; remove it",
    ]
    assert [(r.line, r.stage) for r in good(text)] == [(2, None), (11, "mql")]


def test_a_duplicate_is_only_counted_against_a_row_that_was_kept() -> None:
    text = "email,timezone\na@acme.example,Nowhere/City\na@acme.example,UTC\na@acme.example,\n"
    assert [r.line for r in good(text)] == [3]
    assert errors(text)[-1] == "line 4: a@acme.example already appears on line 3"


def test_unknown_time_zone_without_a_close_match_gets_an_example() -> None:
    (message,) = errors("email,tz\na@acme.example,zzzzzz\n")
    assert message == 'line 2: "zzzzzz" is not an IANA time zone (e.g. Europe/Berlin)'


def test_short_rows_are_padded() -> None:
    (row,) = good("email,first_name,industry\na@acme.example\n")
    assert row.fields == {} and row.attributes == {}


def test_missing_email_column_names_the_columns_found() -> None:
    with pytest.raises(ImportFileError) as info:
        parse("Name,mail_addr,Company\nJane,jane@acme.example,Acme\n")
    assert (
        info.value.message == "leads.csv: no email column; found columns: name, mail_addr, company"
    )


def test_duplicate_columns_are_named() -> None:
    with pytest.raises(
        ImportFileError, match=r"duplicate columns: Email, E-mail \(all mean email\)"
    ):
        parse("Email,E-mail\na@acme.example,b@acme.example\n")


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImportFileError, match="leads.csv: the file is empty"):
        parse("")


def test_mappings_are_checked_like_csv_rows() -> None:
    rows = list(
        parse_mappings(
            [
                {"E-mail": "A@acme.example", "Employees": 50, "TZ": None},
                {"email": "a@acme.example"},
            ],
            first_line=2,
        )
    )
    assert rows[0] == LeadRow(2, "a@acme.example", {}, None, {"employees": "50"})
    assert rows[1] == RowError(3, "a@acme.example", "a@acme.example already appears on line 2")


def test_file_records_for_other_importers(tmp_path: Path) -> None:
    path = tmp_path / "lost.csv"
    path.write_text("\ufeffE-mail;Reason;\na@acme.example;no_budget;\nb@acme.example;x;y;z\n")
    header, records = read_csv_records(path)
    assert header == ["email", "reason", ""]
    first, second = list(records)
    assert (first.line, first.values, first.surplus) == (
        2,
        {"email": "a@acme.example", "reason": "no_budget"},
        0,
    )
    assert (second.line, second.surplus) == (3, 1)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    lines = (
        ["email,name"] + [f"p{i}@acme.example,x" for i in range(3000)] + ["m@acme.example,Müller"]
    )
    path.write_bytes("\n".join(lines).encode("latin-1"))
    _, rows = read_csv_rows(path)
    with pytest.raises(ImportFileError) as info:
        list(rows)
    assert info.value.message == (
        f'{path}: line 3002 is not UTF-8; save the file as "CSV UTF-8" and try again'
    )


def test_a_missing_file_is_an_import_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read the file"):
        read_csv_rows(tmp_path / "nope.csv")
