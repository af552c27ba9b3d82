"""The alias expansion budget: a file whose aliases expand past :data:`MAX_VALUES` is refused.

A "billion laughs" file of nested anchors and aliases is small as text and huge once built; the
budget counts the values every alias use expands to (each node once, memoised) before anything is
constructed, and names the line of the alias that crosses it.
"""

from __future__ import annotations

import yaml

__all__ = ["MAX_VALUES", "alias_budget"]

MAX_VALUES = 20_000
"""How many values a file may hold once its aliases are expanded: a campaign has a few hundred,
a "billion laughs" file of nested aliases billions (it took 1.18 GB before this limit)."""


def alias_budget(uses: list[tuple[int, yaml.Node]], shown: str) -> str | None:
    """The problem when the file's aliases expand it past :data:`MAX_VALUES`, at the alias that
    crosses the line; ``None`` when it stays within (a few ``<<: *defaults`` always do)."""
    sizes: dict[int, int] = {}
    total = 0
    for line, node in uses:
        total += _size(node, sizes, set())
        if total > MAX_VALUES:
            return (
                f"{shown}:{line}: aliases expand this file past {MAX_VALUES:,} values "
                "(nested anchors and aliases); write the values out, or alias fewer levels"
            )
    return None


def _size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """The values under ``node`` with every alias expanded, each node counted once (memo)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if id(node) in active:  # a recursive alias: counted once, as construction shares it
        return 1
    active.add(id(node))
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _size(key, sizes, active) + _size(value, sizes, active)
            if total > MAX_VALUES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _size(item, sizes, active)
            if total > MAX_VALUES:
                break
    active.discard(id(node))
    sizes[id(node)] = total
    return total
