"""What every endpoint of `drip serve` needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.funnel.sla import SLA
from dripengine.storage import Engine


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    sla: SLA
    clock: Clock
