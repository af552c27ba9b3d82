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

from dripengine.clock import Clock, FixedClock, SystemClock
from dripengine.exceptions import CampaignError, CampaignFileErrors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dripengine.campaigns import Campaign
    from dripengine.config import Settings
    from dripengine.sla import SLA


@dataclass
class App:
    config_path: str | None = None
    now_override: datetime | None = None
    _checked: bool = field(default=False, repr=False)

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
        from dripengine.db import make_engine

        return make_engine(self.settings.database_url, echo=self.settings.database.echo)

    def close(self) -> None:
        """Release the database connections (called when the command ends)."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    def ready_engine(self) -> Engine:
        """The engine, after checking that the schema is there and current."""
        if not self._checked:
            from dripengine.db import require_current

            require_current(self.engine)
            self._checked = True
        return self.engine

    @cached_property
    def sla(self) -> SLA:
        from dripengine.sla import load_sla

        return load_sla(self.settings.path("sla"))

    @cached_property
    def campaigns(self) -> list[Campaign]:
        from dripengine.campaigns import load_campaigns

        directory = self.settings.path("campaigns")
        if not directory.is_dir():
            raise CampaignError(
                f"{directory} does not exist: `drip init` makes one, or set paths.campaigns"
            )
        try:
            return load_campaigns(
                directory,
                known_reasons=list(self.sla.recycle_reasons),
                templates_dir=self.settings.path("templates"),
            )
        except CampaignFileErrors as exc:
            raise CampaignError(
                f"{exc.errors[0]} ({len(exc.errors)} problem(s); `drip campaigns validate` lists them)"
            ) from None

    def relative(self, path: Path) -> str:
        try:
            return str(path.absolute().relative_to(Path.cwd()))
        except ValueError:
            return str(path)
