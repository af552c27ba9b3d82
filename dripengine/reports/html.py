"""``drip report`` and ``/report``: the stats as one self-contained HTML page with charts.

:func:`build` reads every view from the database (:mod:`dripengine.reports.page_data`) and renders the
page (:mod:`dripengine.reports.page`); Chart.js is vendored in ``assets/`` (MIT, see NOTICE.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from dripengine.reports import stats
from dripengine.reports.page import render
from dripengine.reports.page_data import ReportData, collect
from dripengine.storage import Engine

if TYPE_CHECKING:
    from dripengine.funnel.sla import SLA


def build(
    engine: Engine,
    window: stats.Window,
    campaign: str | None = None,
    *,
    since_text: str | None = None,
    generated: datetime | None = None,
    sla: SLA | None = None,
) -> str:
    """The report's HTML for ``window`` (``generated`` defaults to ``window.now``); with ``sla``,
    its SLA section."""
    data = collect(engine, window, campaign, sla)
    return render(data, generated or window.now, since_text)


__all__ = ["ReportData", "build", "collect", "render"]
