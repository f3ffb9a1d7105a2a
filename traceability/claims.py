"""The chain's claims (ledger.claims: eventIDs, batch ids) as the block rules read them:
committed ones through a lookup bounded by height, plus those of earlier transactions of
the block being judged. Like a recall's `ChainLookup`, the bound is what makes a verifier
replaying an old block see exactly what the validators saw then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from ledger.claims import tx_claims
from ledger.store import Store
from ledger.tx import Transaction

#: One transaction that made a claim: (transaction id, signer fingerprint).
Claimant = tuple[str, str]
#: Committed claims among `keys`, in blocks below `below_height`, each with its claimants
#: in ledger order. `store_claims` is the real one.
ClaimLookup = Callable[[Collection[bytes], int], Mapping[bytes, list[Claimant]]]


def store_claims(store: Store) -> ClaimLookup:
    """A ClaimLookup over a node's store (its `claims` index)."""
    return store.claimed


class PrefetchedClaims:
    """A ClaimLookup that answers for one height from claims fetched ahead (by a
    verifier's worker, in one query per block), and asks `lookup` for anything else."""

    def __init__(self, lookup: ClaimLookup) -> None:
        self.lookup = lookup
        self._height = -1
        self._keys: frozenset[bytes] = frozenset()
        self._found: Mapping[bytes, list[Claimant]] = {}

    def prefetched(
        self, height: int, keys: frozenset[bytes], found: Mapping[bytes, list[Claimant]]
    ) -> None:
        self._height, self._keys, self._found = height, keys, found

    def __call__(
        self, keys: Collection[bytes], below_height: int
    ) -> Mapping[bytes, list[Claimant]]:
        if below_height == self._height and all(k in self._keys for k in keys):
            return {k: self._found[k] for k in keys if k in self._found}
        return self.lookup(keys, below_height)


class BlockClaims:
    """The claims while block `height` is judged: committed ones and this block's so far."""

    def __init__(self, lookup: ClaimLookup | None, height: int) -> None:
        self.lookup = lookup
        self.height = height
        self._earlier: dict[bytes, list[Claimant]] = {}

    def claimants(self, key: bytes) -> list[Claimant]:
        """Who made claim `key` before the transaction being judged, in ledger order."""
        committed = list(self.lookup([key], self.height).get(key, ())) if self.lookup else []
        return committed + self._earlier.get(key, [])

    def apply(self, tx: Transaction) -> None:
        for key in tx_claims(tx.type, tx.payload):
            self._earlier.setdefault(key, []).append((tx.id, tx.signer))
