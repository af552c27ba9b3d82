"""Load campaign files, and report every problem as ``file:line: field: message``.

YAML is parsed into nodes first so each mapping key and sequence item keeps its line; pydantic's
error locations are then mapped back onto those lines (a missing field falls back to its parent).
The YAML dialect is YAML 1.1 without its traps: ``on``/``no``/``yes`` stay text (``exit.on``, the
country ``NO``) and ``17:00`` stays a time instead of becoming the number 1020.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dripengine.campaigns.schema import Campaign, CampaignProblems, Loc, format_loc
from dripengine.exceptions import CampaignFileErrors

__all__ = ["dump_campaign", "load_campaign_file", "load_campaigns", "validate_campaigns"]

CAMPAIGN_SUFFIXES = (".yaml", ".yml")


class _CampaignYAMLLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no base-60 numbers."""

    yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag
            not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_CampaignYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CampaignYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_CampaignYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


@dataclass
class _Parsed:
    campaign: Campaign
    lines: dict[Loc, int]
    shown: str


# --- public API ------------------------------------------------------------------------------


def load_campaigns(
    directory: Path,
    *,
    known_reasons: Collection[str] | None = None,
    templates_dir: Path | None = None,
) -> list[Campaign]:
    """Every campaign in ``directory``; raises :class:`CampaignFileErrors` listing all problems."""
    campaigns, errors = validate_campaigns(
        directory, known_reasons=known_reasons, templates_dir=templates_dir
    )
    if errors:
        raise CampaignFileErrors(errors)
    return campaigns


def validate_campaigns(
    directory: Path,
    *,
    known_reasons: Collection[str] | None = None,
    templates_dir: Path | None = None,
) -> tuple[list[Campaign], list[str]]:
    """The valid campaigns in ``directory`` (file name order) and one line per problem found.

    Reads ``*.yaml`` and ``*.yml`` directly in ``directory`` (dot files are skipped). A broken
    file is reported and left out; the others are still returned.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [], [f"{directory}: no such directory (it should hold the campaign *.yaml files)"]
    campaigns: list[Campaign] = []
    errors: list[str] = []
    seen_ids: dict[str, str] = {}
    for path in _campaign_files(directory):
        shown = _display(directory, path.name)
        parsed, file_errors = _parse_file(path, shown)
        if parsed is not None:
            file_errors += _reference_problems(parsed, known_reasons, templates_dir)
            id_line = parsed.lines.get(("id",), 1)
            first = seen_ids.get(parsed.campaign.id)
            if first is not None:
                file_errors.append(
                    f'{shown}:{id_line}: id: "{parsed.campaign.id}" is already the id of '
                    f"{first}; campaign ids must be unique"
                )
            else:
                seen_ids[parsed.campaign.id] = f"{shown}:{id_line}"
        errors += file_errors
        if parsed is not None and not file_errors:
            campaigns.append(parsed.campaign)
    return campaigns, errors


def load_campaign_file(
    path: Path,
    *,
    known_reasons: Collection[str] | None = None,
    templates_dir: Path | None = None,
) -> Campaign:
    """One campaign file; raises :class:`CampaignFileErrors` listing all its problems."""
    path = Path(path)
    parsed, errors = _parse_file(path, _display(path.parent, path.name))
    if parsed is not None:
        errors += _reference_problems(parsed, known_reasons, templates_dir)
    if parsed is None or errors:
        raise CampaignFileErrors(errors)
    return parsed.campaign


def dump_campaign(campaign: Campaign) -> dict[str, Any]:
    """A plain dict (text, numbers, lists, dicts) that ``yaml.safe_dump`` writes and we read back."""
    dumped: dict[str, Any] = campaign.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


# --- reading one file ------------------------------------------------------------------------


def _campaign_files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix in CAMPAIGN_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def _display(directory: Path, name: str) -> str:
    """``campaigns/x.yaml``: the path relative to the campaign directory's parent."""
    folder = directory.absolute().name if directory.name in ("", ".", "..") else directory.name
    return f"{folder}/{name}" if folder else name


def _parse_file(path: Path, shown: str) -> tuple[_Parsed | None, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [f"{shown}:1: not UTF-8 text; save the file as UTF-8"]
    except OSError as exc:
        return None, [f"{shown}:1: cannot be read: {exc.strerror or exc}"]
    loader = _CampaignYAMLLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "cannot be parsed"
        return None, [f"{shown}:{line}: invalid YAML: {problem}"]
    except yaml.YAMLError as exc:
        return None, [f"{shown}:1: invalid YAML: {exc}"]
    finally:
        loader.dispose()
    if node is None or data is None:
        return None, [
            f"{shown}:1: the file is empty; a campaign needs at least id, name, audience, "
            "send and tracks"
        ]
    if not isinstance(data, dict):
        return None, [
            f"{shown}:{node.start_mark.line + 1}: a campaign file must be a mapping of fields "
            f"(id: ..., name: ...), not {_kind(data)}"
        ]
    lines: dict[Loc, int] = {(): 1}
    located = _walk(node, (), lines, set())
    campaign: Campaign | None = None
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        located += [
            (_line_for(loc, lines), f"{format_loc(loc) or 'file'}: {message}")
            for loc, message in _explain(exc)
        ]
    if campaign is None or located:
        return None, [f"{shown}:{line}: {message}" for line, message in sorted(located)]
    return _Parsed(campaign, lines, shown), []


def _walk(
    node: yaml.Node, path: Loc, lines: dict[Loc, int], active: set[int]
) -> list[tuple[int, str]]:
    """Record the line of every key and item under ``node``; report duplicate keys."""
    if id(node) in active:  # a recursive alias
        return []
    active = active | {id(node)}
    problems: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: str | int = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if child in lines:
                where = format_loc(child)
                problems.append(
                    (line, f"{where}: duplicate key (also on line {lines[child]}); keep one")
                )
            lines[child] = line
            problems += _walk(value_node, child, lines, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            problems += _walk(item, child, lines, active)
    return problems


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


# --- turning pydantic errors into sentences --------------------------------------------------

_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list (e.g. [a, b])",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _explain(exc: ValidationError) -> list[tuple[Loc, str]]:
    explained: list[tuple[Loc, str]] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CampaignProblems):
            explained += [((*loc, *sub), message) for sub, message in cause.problems]
        else:
            explained.append((loc, _message(error, loc)))
    return explained


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {_show(value)}"
    if kind == "literal_error":
        accepted = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"unknown value {_show(value)} (use {accepted})"
    if kind in ("too_short", "string_too_short"):
        return "cannot be empty"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"must be at least {bound}, got {_show(value)}"
    return f"{error['msg']} (got {_show(value)})"


def _unknown_field(loc: Loc) -> str:
    known = _field_names(loc[:-1])
    name = str(loc[-1])
    if not known:
        return "unknown field"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f'unknown field (did you mean "{close[0]}"?)'
    return f"unknown field (use {', '.join(known)})"


def _field_names(loc: Loc) -> list[str]:
    """The field names the model at ``loc`` accepts (by their YAML spelling)."""
    current: Any = Campaign
    for part in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _strip(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _strip(annotation: Any) -> Any:
    """Unwrap ``Annotated[X, ...]`` and ``X | None`` down to ``X``."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, _UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


_UnionType = type(int | None)


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    return _kind(value) if isinstance(value, (list, dict)) else repr(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a single value ({_show(value)})"


# --- checks against the world outside the file -----------------------------------------------


def _reference_problems(
    parsed: _Parsed, known_reasons: Collection[str] | None, templates_dir: Path | None
) -> list[str]:
    campaign, lines, shown = parsed.campaign, parsed.lines, parsed.shown
    problems: list[tuple[Loc, str]] = []
    if known_reasons is not None:
        known = sorted(known_reasons)
        for index, reason in enumerate(campaign.audience.reasons):
            if reason not in known_reasons:
                close = difflib.get_close_matches(reason, known, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                problems.append(
                    (
                        ("audience", "reasons", index),
                        f'unknown reason "{reason}" ({hint}known reasons: {", ".join(known)})',
                    )
                )
    if templates_dir is not None:
        for track_name, track in campaign.tracks.items():
            for index, step in enumerate(track.steps):
                if not (Path(templates_dir) / step.template).is_file():
                    problems.append(
                        (
                            ("tracks", track_name, "steps", index, "template"),
                            f"{_display(Path(templates_dir), step.template)} does not exist",
                        )
                    )
    return [
        f"{shown}:{_line_for(loc, lines)}: {format_loc(loc)}: {message}"
        for loc, message in problems
    ]
