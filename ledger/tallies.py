"""Running totals a block's rules keep in the store: each transaction may add signed
integer amounts to keys (SHA-256 of what the total is of, chosen by the domain). A total
is the sum over the transactions of blocks below a height, so a verifier replaying an old
block reads exactly what the validators read then.

The ledger only stores and sums them; which keys and amounts a transaction gives is the
domain's rule (`BlockRules.tallies`), and the verifier recomputes every block's rows from
its replay and insists the stored ones are the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping

#: One row: (position of the transaction in its block, key, amount).
Tally = tuple[int, bytes, int]
#: Totals of `keys` over blocks below `below_height` (keys without rows are absent).
TallyLookup = Callable[[Collection[bytes], int], Mapping[bytes, int]]


def tally_key(*parts: str) -> bytes:
    """The key of a running total named by `parts` (e.g. "harvest", plot, season)."""
    return hashlib.sha256("\n".join(parts).encode()).digest()
