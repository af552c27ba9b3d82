"""The YAML dialect: YAML 1.1 without its traps, read by a loader that remembers alias uses.

``on``/``no``/``yes`` stay text (``exit.on``, the country ``NO``) and ``17:00`` stays a time
instead of becoming the number 1020; booleans, integers and floats are YAML 1.2's. The loader also
records the line of every alias it composes, for the budget in :mod:`dripengine.yamlfile.aliases`.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["StrictYAMLLoader"]


class StrictYAMLLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no base-60 numbers; remembers where aliases are used."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_uses: list[tuple[int, yaml.Node]] = []

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        line = self.peek_event().start_mark.line + 1 if self.check_event(yaml.AliasEvent) else 0
        node = super().compose_node(parent, index)
        if line and node is not None:
            self.alias_uses.append((line, node))
        return node

    yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag
            not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
StrictYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


def _timestamp(loader: StrictYAMLLoader, node: yaml.ScalarNode) -> object:
    """A date or time; one the calendar has not (``2026-13-01``) stays text for the schema to
    refuse at its line (PyYAML would raise a bare ValueError out of the parse)."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


StrictYAMLLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
