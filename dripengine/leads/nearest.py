"""The stored addresses nearest to one that matches no lead: "did you mean jane.doe@example.com?".

A typo in an address is one of two kinds: in the local part (``jane.deo@example.com``) or in the
domain (``jane.doe@exmaple.com``). The candidates are therefore the stored addresses on the same
domain or with the same local part, fetched with one query for a whole batch of unknown addresses
(:func:`dripengine.storage.leads.addresses_like`); :func:`dripengine.suggest.nearest` picks the
closest among them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from dripengine.storage import Connection
from dripengine.storage.leads import addresses_like
from dripengine.suggest import nearest

SHOWN = 3  # addresses named in one refusal
CUTOFF = 0.7  # of the differing part alone: "jane.deo" -> "jane.doe", "exmaple" -> "example"
CANDIDATES = 20_000  # rows read for one batch at most (a huge shared domain is sampled)


def nearest_addresses(connection: Connection, emails: Collection[str]) -> dict[str, list[str]]:
    """For each of ``emails`` (normalised, none of them stored), the nearest stored addresses."""
    wanted = sorted({e for e in emails if "@" in e})
    if not wanted:
        return {}
    locals_ = {e.rpartition("@")[0] for e in wanted}
    domains = {e.rpartition("@")[2] for e in wanted}
    by_domain: dict[str, list[str]] = defaultdict(list)
    by_local: dict[str, list[str]] = defaultdict(list)
    for stored in addresses_like(connection, domains, locals_, CANDIDATES):
        local, _, domain = stored.rpartition("@")
        by_domain[domain].append(stored)
        by_local[local].append(stored)
    found = {}
    for email in wanted:
        local, _, domain = email.rpartition("@")
        # compare only the part that differs: on one domain, "nobody" is not a typo of "bob"
        # even though the two addresses share most of their characters
        same_domain = {c.rpartition("@")[0]: c for c in by_domain.get(domain, ())}
        same_local = {c.rpartition("@")[2]: c for c in by_local.get(local, ())}
        matches = [same_domain[m] for m in nearest(local, same_domain, cutoff=CUTOFF)]
        matches += [same_local[m] for m in nearest(domain, same_local, cutoff=CUTOFF)]
        found[email] = matches[:SHOWN]
    return found


__all__ = ["nearest_addresses"]
