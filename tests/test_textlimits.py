"""dripengine.storage.textlimits on its own: what text and JSON the database takes, the same on SQLite and
PostgreSQL. The edges that call it (CSV, API, webhooks, feedback) are tested end to end elsewhere;
these hold the rules every edge shares."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from dripengine.storage.models import Lead
from dripengine.storage.textlimits import column_limits, json_problem, text_problem, without_nul


def test_column_limits_are_the_length_limited_text_columns_as_declared() -> None:
    table = Table(
        "t",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("code", String(8)),
        Column("name", String()),  # no length: no limit
        Column("note", Text()),
    )
    assert column_limits(table) == {"code": 8}
    limits = column_limits(Lead.__table__)  # type: ignore[attr-defined]
    assert limits["email"] == 320
    assert "attributes" not in limits and "score" not in limits


@pytest.mark.parametrize(
    "value",
    ["Jane", "", "Zoë Ørsted 🎉", "line one\nline two", "a\ttab", "crlf\r\n", "a\u2028b"],
)
def test_text_a_person_typed_is_taken(value: str) -> None:
    assert text_problem("note", value, limit=100) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Ja\x00ne", "note contains a NUL character; remove it"),
        ("Ja\x1bne", "note contains a control character (0x1b); remove it"),
        ("Ja\x7fne", "note contains a control character (0x7f); remove it"),
        ("\x0bvertical tab", "note contains a control character (0x0b); remove it"),
        ("x" * 11, "note is 11 characters long; the limit is 10"),
        ("x\n" * 6, "note is 12 characters long; the limit is 10"),
    ],
)
def test_each_problem_is_named_with_the_field_and_the_fix(value: str, problem: str) -> None:
    assert text_problem("note", value, limit=10) == problem


def test_a_nul_is_named_before_the_length_and_no_limit_means_any_length() -> None:
    assert text_problem("name", "\x00" * 50, limit=10) == "name contains a NUL character; remove it"
    assert text_problem("name", "x" * 100_000) is None


def test_the_limit_counts_characters_not_bytes() -> None:
    assert text_problem("name", "é" * 10, limit=10) is None  # 20 bytes in UTF-8


_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@given(value=st.text(max_size=40), limit=st.none() | st.integers(min_value=0, max_value=40))
def test_refused_exactly_when_a_control_character_or_the_length_says_so(
    value: str, limit: int | None
) -> None:
    expected = _REFUSED.search(value) is not None or (limit is not None and len(value) > limit)
    assert (text_problem("f", value, limit) is not None) == expected


def test_json_with_a_nul_anywhere_keys_included_is_refused() -> None:
    assert json_problem("attributes", {"plan": "pro", "seats": 3, "tags": ["a", None]}) is None
    for value in (
        {"a": {"b": ["ok", "n\x00"]}},
        {"k\x00": 1},
        [("x", "y\x00")],
        "\x00",
    ):
        assert json_problem("attributes", value) == "attributes contains a NUL character; remove it"


def test_without_nul_strips_every_string_and_keeps_the_rest() -> None:
    raw = {"reason\x00": "bad\x00 mailbox", "n": 5, "ok": True, "list": ("a\x00", None, 1.5)}
    assert without_nul(raw) == {
        "reason": "bad mailbox",
        "n": 5,
        "ok": True,
        "list": ["a", None, 1.5],
    }
    clean = "no nul here"
    assert without_nul(clean) is clean
