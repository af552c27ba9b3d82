"""The campaigns a process runs: every valid one, the broken ones paused, re-read when files change.

One broken campaign file must not stop the others. :func:`load_live` reads the campaign folder
(and, for the sender, checks each campaign's templates): valid campaigns run; a campaign whose file
or templates are broken is *held*: nothing is sent from it and no lead is enrolled in it, its
enrollments stay due, and it goes on as soon as it is fixed. A broken file that names no id (a
YAML syntax error) holds every campaign that is not loaded, so no enrollment is ever ended as
"campaign no longer exists" because of a typo.

Re-read on a change (:class:`FolderWatch`, polling the files' sizes and modification times):
a campaign whose new file is broken keeps running the version loaded before, said loudly; a
campaign that is new and broken is held. Nothing here talks to the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dripengine.campaigns.loader import CampaignFolder, load_campaign_folder
from dripengine.campaigns.schema import Campaign

TemplateCheck = Callable[[Campaign], list[str]]  # a campaign's template problems, one line each


@dataclass(frozen=True)
class LiveCampaigns:
    campaigns: list[Campaign]  # what runs
    held: frozenset[str] = frozenset()  # campaigns paused because their file is broken
    hold_unknown: bool = False  # a broken file names no id: hold whatever is not loaded
    problems: tuple[str, ...] = ()  # every problem found, file:line: message
    notices: tuple[str, ...] = ()  # one line per broken campaign: what was done about it
    loaded_at: dict[str, datetime] = field(default_factory=dict)  # when each version was read
    why_held: dict[str, str] = field(default_factory=dict)  # held id ("*": any not loaded) -> why

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.campaigns)

    @property
    def only(self) -> frozenset[str] | None:
        """The campaign ids the sender may claim from; None: any (nothing is broken)."""
        return None if not (self.held or self.hold_unknown) else self.ids

    @property
    def broken(self) -> bool:
        return bool(self.problems)


def load_live(
    campaigns_dir: Path,
    *,
    known_reasons: Collection[str] | None,
    templates_dir: Path | None,
    now: datetime,
    check_templates: TemplateCheck | None = None,
    previous: LiveCampaigns | None = None,
) -> LiveCampaigns:
    """Read the folder; with ``previous``, a campaign whose file broke keeps its old version."""
    folder = load_campaign_folder(
        campaigns_dir, known_reasons=known_reasons, templates_dir=templates_dir
    )
    return combine(folder, now=now, check_templates=check_templates, previous=previous)


def combine(
    folder: CampaignFolder,
    *,
    now: datetime,
    check_templates: TemplateCheck | None = None,
    previous: LiveCampaigns | None = None,
) -> LiveCampaigns:
    """What runs, from a folder as read and what ran before. Pure (the template check aside)."""
    problems = list(folder.errors)
    notices: list[str] = []
    before: Mapping[str, Campaign] = {c.id: c for c in previous.campaigns} if previous else {}
    loaded_at = dict(previous.loaded_at) if previous else {}
    running: list[Campaign] = []
    held: set[str] = set()
    why: dict[str, str] = {}
    for campaign in folder.campaigns:
        template_problems = check_templates(campaign) if check_templates else []
        if not template_problems:
            running.append(campaign)
            if before.get(campaign.id) != campaign:
                loaded_at[campaign.id] = now
            continue
        problems += template_problems
        old = before.get(campaign.id)
        if old is not None:
            running.append(old)
            notices.append(
                f'campaign "{campaign.id}": its templates have {len(template_problems)} '
                f"problem(s) ({template_problems[0]}); still sending the version loaded "
                f"{loaded_at.get(campaign.id, now):%Y-%m-%d %H:%M} UTC"
            )
        else:
            held.add(campaign.id)
            why[campaign.id] = f"its templates have a problem: {template_problems[0]}"
            notices.append(
                f'campaign "{campaign.id}" is paused: its templates have '
                f"{len(template_problems)} problem(s) ({template_problems[0]})"
            )
    hold_unknown = False
    for broken in folder.broken:
        first = broken.errors[0]
        old = before.get(broken.campaign_id) if broken.campaign_id else None
        if old is not None and all(c.id != old.id for c in running):
            running.append(old)
            notices.append(
                f'{broken.shown} is broken ({first}); campaign "{old.id}" is still sending '
                f"the version loaded {loaded_at.get(old.id, now):%Y-%m-%d %H:%M} UTC"
            )
        elif broken.campaign_id is not None:
            if all(c.id != broken.campaign_id for c in running):
                held.add(broken.campaign_id)
                why[broken.campaign_id] = f"{broken.shown} is broken: {first}"
            notices.append(
                f'{broken.shown} is broken ({first}); campaign "{broken.campaign_id}" is paused: '
                "nothing is sent from it and no lead is enrolled in it until the file is fixed"
            )
        else:
            hold_unknown = True
            why["*"] = f"{broken.shown} is broken and names no campaign id: {first}"
            notices.append(
                f"{broken.shown} is broken ({first}) and names no campaign id: every campaign "
                "not loaded is paused (its leads wait) until the file is fixed"
            )
    kept = {c.id for c in running}
    loaded_at = {k: v for k, v in loaded_at.items() if k in kept}
    return LiveCampaigns(
        sorted(running, key=lambda c: c.id),
        frozenset(held - kept),
        hold_unknown,
        tuple(problems),
        tuple(notices),
        loaded_at,
        {k: v for k, v in why.items() if k == "*" or k not in kept},
    )


class FolderWatch:
    """Whether the files under some folders changed since the last look (size, mtime, names)."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self.seen = self.signature()

    def signature(self) -> frozenset[tuple[str, int, int]]:
        found: set[tuple[str, int, int]] = set()
        for folder in self.folders:
            for root, _dirs, files in os.walk(folder):
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue  # removed while we looked: the next look sees it gone
                    found.add((path, stat.st_size, stat.st_mtime_ns))
        return frozenset(found)

    def changed(self) -> bool:
        now = self.signature()
        if now == self.seen:
            return False
        self.seen = now
        return True


class Reloader:
    """Re-reads the campaign folder when a campaign or template file changed (for the daemon)."""

    def __init__(
        self,
        current: LiveCampaigns,
        campaigns_dir: Path,
        templates_dir: Path,
        *,
        known_reasons: Collection[str] | None,
        now: Callable[[], datetime],
        check_templates: TemplateCheck | None = None,
    ) -> None:
        self.current = current
        self.campaigns_dir = campaigns_dir
        self.templates_dir = templates_dir
        self.known_reasons = known_reasons
        self.now = now
        self.check_templates = check_templates
        self.watch = FolderWatch(campaigns_dir, templates_dir)

    def poll(self) -> LiveCampaigns | None:
        """The campaigns as the files now say, or None when no file changed since the last poll."""
        if not self.watch.changed():
            return None
        self.current = load_live(
            self.campaigns_dir,
            known_reasons=self.known_reasons,
            templates_dir=self.templates_dir,
            now=self.now(),
            check_templates=self.check_templates,
            previous=self.current,
        )
        return self.current


__all__ = ["FolderWatch", "LiveCampaigns", "Reloader", "TemplateCheck", "combine", "load_live"]
