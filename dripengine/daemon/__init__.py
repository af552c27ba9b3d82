"""``drip run``: :mod:`.worker` (APScheduler 3 as the clock, signals, the worker's heartbeat row)
and :mod:`.housekeeping` (what a worker does besides sending: breakers, CRM handoffs, settling
messages a crash left unknown, through the provider registry)."""
