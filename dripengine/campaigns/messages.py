"""Pydantic's validation errors on a campaign, one sentence per problem with its location.

The sentences are :func:`dripengine.yamlfile.explain.explain`'s; this module fixes the model to
:class:`~dripengine.campaigns.schema.Campaign` (for "did you mean" on unknown keys).
"""

from __future__ import annotations

from pydantic import ValidationError

from dripengine.campaigns.schema import Campaign, Loc
from dripengine.yamlfile.explain import explain as _explain
from dripengine.yamlfile.explain import kind, show

__all__ = ["explain", "kind", "show"]


def explain(exc: ValidationError) -> list[tuple[Loc, str]]:
    """``(location, message)`` for every problem, cross-field problems expanded."""
    return _explain(exc, Campaign)
