"""Load campaign files, and report every problem as ``file:line: field: message``.

Parsing (with the line of every key) and explaining pydantic's errors is
:mod:`dripengine.yamlfile`; this module adds what is particular to campaigns: the directory of
files, unique ids, and references to the SLA's recycle reasons and to template files.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dripengine.campaigns.schema import Campaign, Loc
from dripengine.exceptions import CampaignFileErrors
from dripengine.yamlfile.parse import YAMLDocument, read_yaml
from dripengine.yamlfile.validation import validate

__all__ = [
    "BrokenFile",
    "CampaignFolder",
    "dump_campaign",
    "load_campaign_file",
    "load_campaign_folder",
    "load_campaigns",
    "validate_campaigns",
]

CAMPAIGN_SUFFIXES = (".yaml", ".yml")


@dataclass
class _Parsed:
    campaign: Campaign
    document: YAMLDocument


@dataclass(frozen=True)
class BrokenFile:
    """A campaign file that is not valid: left out, and its campaign paused until it is fixed."""

    shown: str  # campaigns/x.yaml
    campaign_id: str | None  # its id when the file says one, else None (a YAML syntax error)
    errors: tuple[str, ...]


@dataclass(frozen=True)
class CampaignFolder:
    """The campaign folder as read: the valid campaigns and the files that are not."""

    campaigns: list[Campaign]
    broken: list[BrokenFile]
    errors: list[str]  # every problem, in file order (the folder itself missing included)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.campaigns)


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
    folder = load_campaign_folder(
        directory, known_reasons=known_reasons, templates_dir=templates_dir
    )
    return folder.campaigns, folder.errors


def load_campaign_folder(
    directory: Path,
    *,
    known_reasons: Collection[str] | None = None,
    templates_dir: Path | None = None,
) -> CampaignFolder:
    """:func:`validate_campaigns`, with each broken file and the campaign id it names."""
    directory = Path(directory)
    if not directory.is_dir():
        problem = f"{directory}: no such directory (it should hold the campaign *.yaml files)"
        return CampaignFolder([], [], [problem])
    campaigns: list[Campaign] = []
    broken: list[BrokenFile] = []
    errors: list[str] = []
    seen_ids: dict[str, str] = {}
    for path in _campaign_files(directory):
        shown = _display(directory, path.name)
        parsed, file_errors, named_id = _parse_file_named(path, shown)
        first = None
        if parsed is not None:
            file_errors += _reference_problems(parsed, known_reasons, templates_dir)
            id_line = parsed.document.lines.get(("id",), 1)
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
        elif file_errors:
            # a second file with a taken id names the first file's campaign, not one of its own
            broken.append(BrokenFile(shown, None if first else named_id, tuple(file_errors)))
    return CampaignFolder(campaigns, broken, errors)


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
    parsed, errors, _ = _parse_file_named(path, shown)
    return parsed, errors


def _parse_file_named(path: Path, shown: str) -> tuple[_Parsed | None, list[str], str | None]:
    """The parsed file (None when not valid), its problems, and the id it names if any."""
    document, errors = read_yaml(
        path,
        shown,
        needs="a campaign needs at least id, name, audience, send and tracks",
        must_be="a campaign file must be a mapping of fields (id: ..., name: ...)",
    )
    if document is None:
        return None, errors, None
    named = document.data.get("id")
    named_id = named.strip() if isinstance(named, str) and named.strip() else None
    campaign, errors = validate(document, Campaign)
    if campaign is None:
        return None, errors, named_id
    return _Parsed(campaign, document), [], campaign.id


# --- checks against the world outside the file -----------------------------------------------


def _reference_problems(
    parsed: _Parsed, known_reasons: Collection[str] | None, templates_dir: Path | None
) -> list[str]:
    campaign = parsed.campaign
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
                at: Loc = ("tracks", track_name, "steps", index)
                named = [(("template",), step.template)] + [
                    (("variants", i, "template"), variant.template)
                    for i, variant in enumerate(step.variants or [])
                    if variant.template is not None
                ]
                for where, template in named:
                    if not (Path(templates_dir) / template).is_file():
                        problems.append(
                            (
                                (*at, *where),
                                f"{_display(Path(templates_dir), template)} does not exist",
                            )
                        )
    return [parsed.document.error(loc, message) for loc, message in problems]
