"""The hand-back to the CRM: :mod:`.body` (the JSON body, its HMAC signature, the backoff; pure)
and :mod:`.delivery` (claim due Handoff rows with a lease, POST, record: an outbox, delivered at
least once). The Handoff row itself is written by :mod:`dripengine.funnel.requalify`."""
