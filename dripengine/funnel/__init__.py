"""The funnel: lifecycle stages, the legal moves between them, and the one function each that moves
a lead. Nothing outside this package writes ``lead.stage`` or a ``stage_change`` row.

- recycle (sales gave the lead back): :func:`dripengine.funnel.recycle.recycle`, over the pure
  :func:`dripengine.funnel.recycle_plan.decide`; a CSV of them: :mod:`dripengine.funnel.recycle_csv`;
- requalify (engagement returns it to sales as an MQL, with a Handoff row):
  :func:`dripengine.funnel.requalify.requalify`, called by the engagement pipeline;
- sales' feedback on a hand-back: :func:`dripengine.funnel.feedback.record`, over the pure
  :func:`dripengine.funnel.feedback_plan.decide`.

Stages and legal moves: :mod:`dripengine.funnel.rules`; the SLA: :mod:`dripengine.funnel.sla`.
The SQL is :mod:`dripengine.storage.funnel`'s.
"""
