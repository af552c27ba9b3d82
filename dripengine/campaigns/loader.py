"""Load campaign files, and report every problem as ``file:line: field: message``.

YAML is parsed into nodes first so each mapping key and sequence item keeps its line; pydantic's
error locations are then mapped back onto those lines (a missing field falls back to its parent).
The YAML dialect is YAML 1.1 without its traps: ``on``/``no``/``yes`` stay text (``exit.on``, the
country ``NO``) and ``17:00`` stays a time instead of becoming the number 1020.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dripengine.campaigns.messages import explain, kind
from dripengine.campaigns.schema import Campaign, Loc, format_loc
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
            f"(id: ..., name: ...), not {kind(data)}"
        ]
    lines: dict[Loc, int] = {(): 1}
    located = _walk(node, (), lines, set())
    campaign: Campaign | None = None
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        located += [
            (_line_for(loc, lines), f"{format_loc(loc) or 'file'}: {message}")
            for loc, message in explain(exc)
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
