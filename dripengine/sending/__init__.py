"""Sending: the pipeline a round of due enrollments goes through — claim → decide → record
('sending') → render (compose) → deliver → record (results, advance) — run by
:mod:`.dispatcher`; the policy, the outgoing message and its headers, rate limits and the
complaint breaker. Its SQL lives in :mod:`dripengine.storage` (``rounds``, ``messages``,
``pauses``)."""
