"""Where a value sits in a YAML document: its location (keys and list indexes) and its line.

:func:`walk` records the line of every mapping key and sequence item of a node tree, resolving
YAML merge keys (``<<: *defaults``) as construction does and reporting duplicate keys;
:func:`line_for` finds the line of a location, falling back to its nearest parent.
"""

from __future__ import annotations

import yaml

__all__ = ["MERGE_TAG", "Loc", "format_loc", "line_for", "walk"]

Loc = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes, ``("tracks", "cold", "steps", 2)``."""


def format_loc(loc: Loc) -> str:
    """``("tracks", "cold", "steps", 2, "wait")`` -> ``tracks.cold.steps[2].wait``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def walk(
    node: yaml.Node, path: Loc, lines: dict[Loc, int], active: set[int]
) -> list[tuple[int, str]]:
    """Record the line of every key and item under ``node``; report duplicate keys."""
    if id(node) in active:  # a recursive alias
        return []
    active = active | {id(node)}
    problems: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node, own in _pairs(node, active):
            key: str | int = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if own and child in lines:
                where = format_loc(child)
                problems.append(
                    (line, f"{where}: duplicate key (also on line {lines[child]}); keep one")
                )
            lines[child] = line
            problems += walk(value_node, child, lines, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            problems += walk(item, child, lines, active)
    return problems


MERGE_TAG = "tag:yaml.org,2002:merge"


def _pairs(node: yaml.MappingNode, active: set[int]) -> list[tuple[yaml.Node, yaml.Node, bool]]:
    """The mapping's ``(key, value, own)`` pairs as YAML's merge key resolves them: its own keys
    (duplicates too, to report), then each ``<<: *anchor`` key it does not set itself, earlier
    anchors first. Overriding a merged key is what merge keys are for, not a duplicate."""
    own = [(k, v, True) for k, v in node.value if k.tag != MERGE_TAG]
    seen = {str(k.value) for k, _, _ in own if isinstance(k, yaml.ScalarNode)}
    merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
    for key, value in node.value:
        if key.tag != MERGE_TAG:
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode) or id(source) in active:
                continue  # not a mapping: construction reports it; a merge of itself: nothing
            for k, v, _ in _pairs(source, active | {id(source)}):
                name = str(k.value) if isinstance(k, yaml.ScalarNode) else None
                if name is None or name not in seen:
                    merged.append((k, v, False))
                    if name is not None:
                        seen.add(name)
    return own + merged


def line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of ``loc``, or of its nearest parent that is in the file (1 at worst)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
