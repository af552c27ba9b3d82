"""One colour per campaign, the same on every chart and beside every table row of the report.

The mapping is made once per page from every campaign the page shows, in name order, so a campaign
keeps its colour from chart to chart and from one report to the next while the set of campaigns
stays the same. Campaigns get distinct colours however many there are: the first ten come from a
palette chosen to stay apart for colour-blind readers (Tableau 10), the rest are spread around the
colour wheel. Series that are not campaigns (sent, opens, rates) are drawn in the greys of
:data:`SERIES`, never in a campaign's colour.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#17becf",
)
SERIES = ("#1d2433", "#5b6475", "#8a93a3", "#b4bac5")
"""Ink to light grey: for the series of the charts that are not per campaign."""

_GOLDEN_ANGLE = 137.50776405


def _spread(index: int) -> str:
    """The ``index``-th colour after the palette: hues a golden angle apart, two lightnesses."""
    hue = (index * _GOLDEN_ANGLE) % 360 / 360
    lightness = 0.42 if index % 2 else 0.56
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.62)
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


def campaign_colours(names: Iterable[str]) -> dict[str, str]:
    """Each distinct name (in name order) with its colour; no two names share one."""
    taken = set(SERIES)
    colours: dict[str, str] = {}
    candidates = (PALETTE[i] if i < len(PALETTE) else _spread(i) for i in range(1 << 30))
    for name in sorted(set(names)):
        colour = next(c for c in candidates if c not in taken)
        taken.add(colour)
        colours[name] = colour
    return colours
