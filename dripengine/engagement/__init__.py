"""Engagement: events in from every source, one ingest path (:mod:`dripengine.engagement.ingest`):
store the normalised events once, then suppress, rescore, and hand each rescored lead to the funnel."""

from dripengine.vocabulary import IncomingEvent

__all__ = ["IncomingEvent"]
