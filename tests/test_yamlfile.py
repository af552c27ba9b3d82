"""The generic YAML file: lines of keys, the YAML dialect, duplicate keys, explained errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dripengine.yamlfile.explain import explain
from dripengine.yamlfile.locations import Loc, format_loc, line_for
from dripengine.yamlfile.parse import YAMLDocument, parse_yaml, read_yaml
from dripengine.yamlfile.validation import validate

WORDING = {"needs": "a thing needs a name", "must_be": "a thing file must be a mapping"}


def parse(text: str) -> YAMLDocument:
    document, errors = parse_yaml(text, "things/x.yaml", **WORDING)
    assert errors == []
    assert document is not None
    return document


def parse_errors(text: str) -> list[str]:
    document, errors = parse_yaml(text, "things/x.yaml", **WORDING)
    assert document is None
    return errors


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    size: int = Field(default=1, ge=1)


class Problems(ValueError):
    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parts: list[Part] = []
    by_code: dict[str, Part] = {}

    @field_validator("parts")
    @classmethod
    def _no_twins(cls, parts: list[Part]) -> list[Part]:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for index, part in enumerate(parts):
            if part.label in seen:
                problems.append(((index, "label"), f"same label as parts[{seen[part.label]}]"))
            seen.setdefault(part.label, index)
        if problems:
            raise Problems(problems)
        return parts


def test_lines_of_nested_keys_and_list_items() -> None:
    document = parse(
        "name: x\n"  # 1
        "parts:\n"  # 2
        "  - label: a\n"  # 3
        "    size: 2\n"  # 4
        "  -\n"  # 5
        "    label: b\n"  # 6
        "by_code:\n"  # 7
        "  k:\n"  # 8
        "    label: c\n"  # 9
        "tags: [p, q]\n"  # 10
    )
    assert document.lines[()] == 1
    assert document.lines[("name",)] == 1
    assert document.lines[("parts", 0)] == 3
    assert document.lines[("parts", 0, "size")] == 4
    assert document.lines[("parts", 1)] == 6  # an item starts where its content does
    assert document.lines[("parts", 1, "label")] == 6
    assert document.lines[("by_code", "k", "label")] == 9
    assert document.lines[("tags", 1)] == 10
    assert document.problems == []
    # a missing key falls back to its nearest parent in the file
    assert document.line_for(("by_code", "k", "size")) == 8
    assert line_for(("nowhere", 3), document.lines) == 1


def test_yaml_1_1_traps_stay_text() -> None:
    data = parse(
        "on: no\nNO: yes\noff: Off\ny: n\nat: 17:00\nbase60: 1:30:00\n"
        "flag: true\nother: False\ncount: 12\nratio: 0.5\nexp: 1e3\nneg: -3\n"
    ).data
    assert data == {
        "on": "no",
        "NO": "yes",
        "off": "Off",
        "y": "n",
        "at": "17:00",
        "base60": "1:30:00",
        "flag": True,
        "other": False,
        "count": 12,
        "ratio": 0.5,
        "exp": "1e3",  # YAML 1.1 needs the dot, and so does this dialect
        "neg": -3,
    }


def test_duplicate_keys_are_reported_not_fatal() -> None:
    document = parse("name: a\nparts:\n  - label: x\n    label: y\nname: b\n")
    assert document.data["name"] == "b"
    assert document.problems == [
        (4, "parts[0].label: duplicate key (also on line 3); keep one"),
        (5, "name: duplicate key (also on line 1); keep one"),
    ]
    thing, errors = validate(document, Thing)
    assert thing is None
    assert errors == [
        "things/x.yaml:4: parts[0].label: duplicate key (also on line 3); keep one",
        "things/x.yaml:5: name: duplicate key (also on line 1); keep one",
    ]


def test_recursive_alias_does_not_loop() -> None:
    document = parse("name: &a\n  self: *a\n")
    assert document.lines[("name", "self")] == 2


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "things/x.yaml:1: the file is empty; a thing needs a name"),
        ("# only a comment\n", "things/x.yaml:1: the file is empty; a thing needs a name"),
        ("\n\n- a\n", "things/x.yaml:3: a thing file must be a mapping, not a list"),
        (
            "hello\n",
            'things/x.yaml:1: a thing file must be a mapping, not a single value ("hello")',
        ),
        (
            "a: [1,\n",
            "things/x.yaml:2: invalid YAML: the file ends inside a [ list or { mapping: close it",
        ),
        (
            "a: b\n---\na: c\n",
            "things/x.yaml:2: invalid YAML: a second document after ---: a file holds one (remove the ---)",
        ),
    ],
)
def test_what_is_not_a_mapping(text: str, error: str) -> None:
    assert parse_errors(text) == [error]


def test_read_yaml(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert read_yaml(path, "x.yaml", **WORDING) == (
        None,
        ["x.yaml:1: not UTF-8 text; save the file as UTF-8"],
    )
    document, errors = read_yaml(tmp_path, "dir", **WORDING)
    assert document is None
    assert errors[0].startswith("dir:1: cannot be read: ")
    path.write_text("name: café\n", encoding="utf-8")
    document, errors = read_yaml(path, "x.yaml", **WORDING)
    assert errors == []
    assert document is not None
    assert document.data == {"name": "café"}


def test_validate_explains_every_problem_on_its_line() -> None:
    document = parse(
        "nam: x\n"  # 1
        "parts:\n"  # 2
        "  - label: a\n"  # 3
        "    size: 0\n"  # 4
        "  - labl: b\n"  # 5
        "by_code:\n"  # 6
        "  k: [1]\n"  # 7
    )
    thing, errors = validate(document, Thing)
    assert thing is None
    assert errors == [
        'things/x.yaml:1: nam: unknown field (did you mean "name"?)',
        "things/x.yaml:1: name: required, but missing",
        "things/x.yaml:4: parts[0].size: must be at least 1, got 0",
        "things/x.yaml:5: parts[1].label: required, but missing",
        'things/x.yaml:5: parts[1].labl: unknown field (did you mean "label"?)',
        "things/x.yaml:7: by_code.k: expected a mapping (key: value), got a list",
    ]
    _, first = validate(document, Thing, unknown_first=True)
    assert first[:2] == [
        'things/x.yaml:1: nam: unknown field (did you mean "name"?)',
        'things/x.yaml:5: parts[1].labl: unknown field (did you mean "label"?)',
    ]
    assert sorted(first) == sorted(errors)


def test_unknown_field_without_a_close_match_lists_the_fields() -> None:
    _, errors = validate(parse("name: x\nby_code:\n  k:\n    label: a\n    zzz: 1\n"), Thing)
    assert errors == ["things/x.yaml:5: by_code.k.zzz: unknown field (use label, size)"]


def test_problems_raised_by_a_validator_are_expanded() -> None:
    document = parse("name: x\nparts:\n  - label: a\n  - label: b\n  - label: a\n")
    thing, errors = validate(document, Thing)
    assert thing is None
    assert errors == ["things/x.yaml:5: parts[2].label: same label as parts[0]"]
    with pytest.raises(ValidationError) as caught:
        Thing.model_validate(document.data)
    assert explain(caught.value, Thing) == [(("parts", 2, "label"), "same label as parts[0]")]


def test_valid_document() -> None:
    document = parse("name: x\nparts:\n  - label: a\n")
    thing, errors = validate(document, Thing)
    assert errors == []
    assert thing == Thing(name="x", parts=[Part(label="a")])
    assert document.error(("parts", 0, "label"), "bad") == "things/x.yaml:3: parts[0].label: bad"


def test_format_loc() -> None:
    assert format_loc(("tracks", "cold", "steps", 2, "wait")) == "tracks.cold.steps[2].wait"
    assert format_loc(("parts", 0)) == "parts[0]"
    assert format_loc(()) == ""


# --- hostile files (issue 12, finding 9) -------------------------------------------------

BILLION_LAUGHS = "id: bomb\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_is_refused_at_its_line_fast_and_small() -> None:
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.perf_counter()
    document, errors = parse_yaml(BILLION_LAUGHS, "campaigns/bomb.yaml", **WORDING)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert document is None
    assert errors == [
        "campaigns/bomb.yaml:6: aliases expand this file past 20,000 values (nested anchors "
        "and aliases); write the values out, or alias fewer levels"
    ]
    assert peak < 5_000_000 and elapsed < 2.0  # generous bounds: unbounded was 1.18 GB


def test_merge_keys_and_a_few_aliases_still_load() -> None:
    document = parse(
        "defaults: &defaults\n  wait: 2d\n  template: a.mjml\n"
        "steps:\n  - <<: *defaults\n    id: one\n  - <<: *defaults\n    id: two\n"
        "tags: &tags [x, y]\nmore: *tags\n"
    )
    assert document.data["steps"][1] == {"wait": "2d", "template": "a.mjml", "id": "two"}
    assert document.data["more"] == ["x", "y"]


def test_a_file_nested_thousands_deep_is_one_line_not_a_traceback() -> None:
    document, errors = parse_yaml("a: " + "[" * 5000 + "]" * 5000, "campaigns/deep.yaml", **WORDING)
    assert document is None
    assert errors == [
        "campaigns/deep.yaml:1: invalid YAML: nested too deeply; a campaign needs a few levels"
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a: b: c", "things/x.yaml:1: invalid YAML: a colon where a value should be"),
        (
            "a:\n  - x\n b: 2",
            "things/x.yaml:3: invalid YAML: this line's indentation does not match",
        ),
        ("a: [1, 2", "things/x.yaml:1: invalid YAML: a [ list is not closed with ]"),
        ("a: {b: 1", "things/x.yaml:1: invalid YAML: a { mapping is not closed with }"),
        ('a: "x', "things/x.yaml:1: invalid YAML: a quoted value is not closed"),
        ("a:\n\t- x", "things/x.yaml:2: invalid YAML: a tab character: indent with spaces"),
        ("a: @x", "things/x.yaml:1: invalid YAML: a value starts with '@', which YAML reserves"),
        ("a: *nope", "things/x.yaml:1: invalid YAML: *nope refers to no anchor"),
    ],
)
def test_yaml_errors_are_in_our_words_with_the_fix(text: str, error: str) -> None:
    """Issue 15, item 13: no raw PyYAML text ("mapping values are not allowed here")."""
    document, errors = parse_yaml(text, "things/x.yaml", **WORDING)
    assert document is None
    [message] = errors
    assert message.startswith(error), message
    assert "<block" not in message and "<stream end>" not in message


def test_a_key_set_beside_a_merge_key_overrides_it_and_is_no_duplicate() -> None:
    document = parse(
        "steps:\n  - &checkin\n    id: checkin\n    wait: 1d\n"
        "  - <<: *checkin\n    id: whats-new\n"
        "  - <<: *checkin\n    id: breakup\n    id: twice\n"
    )
    assert document.data["steps"][1] == {"id": "whats-new", "wait": "1d"}
    assert document.problems == [(9, "steps[2].id: duplicate key (also on line 8); keep one")]
    assert document.line_for(("steps", 1, "id")) == 6  # its own line
    assert document.line_for(("steps", 1, "wait")) == 4  # where the merged value is written
