"""What every command needs, loaded once and only when asked for: settings, engine, campaigns, SLA.

Each is imported when first asked for, too: ``drip sla`` never imports SQLAlchemy or the campaign
schema, ``drip recycle`` never the web app (tests/test_cli_startup.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dripengine.clock import Clock, FixedClock, SystemClock
from dripengine.exceptions import CampaignError

if TYPE_CHECKING:
    from dripengine.campaigns import Campaign
    from dripengine.campaigns.live import LiveCampaigns, TemplateCheck
    from dripengine.config import Settings
    from dripengine.funnel.sla import SLA
    from dripengine.storage import Engine


@dataclass
class App:
    config_path: str | None = None
    now_override: datetime | None = None
    _checked: bool = field(default=False, repr=False)
    _announced: set[str] = field(default_factory=set, repr=False)
    _told_validate: bool = field(default=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        from dripengine.config import load_settings

        return load_settings(self.config_path)

    @cached_property
    def clock(self) -> Clock:
        if self.now_override is not None:
            return FixedClock(self.now_override)
        return SystemClock()

    def now(self) -> datetime:
        return self.clock.now()

    @cached_property
    def engine(self) -> Engine:
        from dripengine.storage.engine import open_engine

        return open_engine(self.settings)

    def close(self) -> None:
        """Release the database connections (called when the command ends)."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    def ready_engine(self) -> Engine:
        """The engine, after checking that the schema is there and current."""
        if not self._checked:
            from dripengine.storage.engine import require_current

            require_current(self.engine)
            self._checked = True
        return self.engine

    @cached_property
    def sla(self) -> SLA:
        from dripengine.funnel.sla import load_sla

        return load_sla(self.settings.path("sla"))

    @cached_property
    def campaigns(self) -> list[Campaign]:
        """The valid campaigns; a broken file is said loudly on stderr and its campaign paused
        (one broken file does not stop the others: :mod:`dripengine.campaigns.live`). With no
        valid campaign at all, the first problem is the error: nothing could be enrolled."""
        live = self.live_campaigns()
        if live.broken and not live.campaigns:
            raise CampaignError(
                f"{live.problems[0]} (no campaign file is valid; `drip campaigns validate` "
                f"lists {len(live.problems)} problem(s))"
            )
        return live.campaigns

    def live_campaigns(self, *, check_templates: bool = False) -> LiveCampaigns:
        """The campaign folder as :func:`~dripengine.campaigns.live.load_live` reads it (with
        ``check_templates``, a campaign whose templates do not render is paused too); every
        broken campaign is announced once on stderr."""
        from dripengine.campaigns.live import load_live

        directory = self.settings.path("campaigns")
        if not directory.is_dir():
            raise CampaignError(
                f"{directory} does not exist: `drip init` makes one, or set paths.campaigns"
            )
        live = load_live(
            directory,
            known_reasons=self.sla.known_reasons,
            templates_dir=self.settings.path("templates"),
            now=self.now(),
            check_templates=self.template_check() if check_templates else None,
        )
        self.announce(live)
        return live

    def template_check(self) -> TemplateCheck:
        from dripengine.templates import check_templates

        templates_dir = self.settings.path("templates")
        campaigns_dir = self.settings.path("campaigns")
        sender = self.settings.sender

        def check(campaign: Campaign) -> list[str]:
            return check_templates(
                [campaign],
                templates_dir,
                postal_address=sender.postal_address,
                base_url=sender.base_url,
                campaigns_dir=campaigns_dir,
            )

        return check

    def announce(self, live: LiveCampaigns) -> None:
        """Each broken campaign, once per process, on stderr: it must not go unnoticed."""
        for notice in live.notices:
            if notice not in self._announced:
                self._announced.add(notice)
                click.echo(f"warning: {notice}", err=True)
        if live.notices and not self._told_validate:
            self._told_validate = True
            click.echo(
                f"warning: {len(live.problems)} problem(s) in the campaign files: "
                "`drip campaigns validate` lists them",
                err=True,
            )

    def relative(self, path: Path) -> str:
        try:
            return str(path.absolute().relative_to(Path.cwd()))
        except ValueError:
            return str(path)
