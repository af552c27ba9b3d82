"""Engagement: events in from every source, one ingest path, scoring, suppression, requalification."""

from dripengine.engagement.vocabulary import IncomingEvent

__all__ = ["IncomingEvent"]
