"""Event files for `drip events ingest`: arrays and NDJSON, each item with its line."""

from __future__ import annotations

from dripengine.engagement.event_files import read_items


def test_a_json_array_gives_each_item_with_its_starting_line() -> None:
    text = '[\n  {"a": 1},\n  {"b":\n 2},\n  3\n]\n'
    items = list(read_items(text))
    assert [(i.line, i.value) for i in items] == [(2, {"a": 1}), (3, {"b": 2}), (5, 3)]


def test_ndjson_gives_each_line_and_reports_bad_ones() -> None:
    items = list(read_items('{"a": 1}\n\nnot json\n{"b": 2}\n'))
    assert [(i.line, i.value, i.error is None) for i in items] == [
        (1, {"a": 1}, True),
        (3, None, False),
        (4, {"b": 2}, True),
    ]
    assert items[1].error is not None and items[1].error.startswith("not JSON")


def test_a_broken_array_keeps_what_came_before() -> None:
    items = list(read_items('[{"a": 1},\n{"b": oops}]'))
    assert items[0].value == {"a": 1}
    assert items[1].line == 2 and items[1].error is not None
    assert "rest of the file not read" in items[1].error


def test_empty_inputs_give_nothing() -> None:
    assert list(read_items("")) == []
    assert list(read_items(" [ ] ")) == []
