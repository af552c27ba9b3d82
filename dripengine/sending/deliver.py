"""The fourth stage of a round: hand its rendered emails to the provider, one call a round.

Only emails whose ``sending`` row is committed reach this point (:mod:`.record`); a send that
could not be rendered is not handed over and is recorded as failed. What differs per provider
(how many requests it keeps in flight, whether it tracks engagement, what evidence it has after a
crash) is the provider's own (:class:`~dripengine.providers.base.Provider`); this stage only
collects one result per email by our id (``uid``).
"""

from __future__ import annotations

from collections.abc import Sequence

from dripengine.providers.base import Provider, SendResult
from dripengine.sending.decide import Send


def deliver(provider: Provider, sends: Sequence[Send]) -> dict[str, SendResult]:
    """The provider's result for each rendered email of ``sends``, by uid."""
    ready = [s.email for s in sends if s.email is not None]
    return {r.uid: r for r in provider.send(ready)} if ready else {}


__all__ = ["deliver"]
