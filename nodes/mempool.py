"""Transactions admitted but not yet committed, in arrival order, bounded.

De-duplicated by id: gossip delivers the same transaction from several peers and a
client may retry; both are no-ops here.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.errors import LedgerError
from ledger.tx import Transaction


class MempoolFullError(LedgerError):
    """The node holds as many pending transactions as it may: retry later."""

    code = "busy"


class Mempool:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._txs: dict[str, Transaction] = {}
        #: The same transactions by canonical envelope bytes: a proposal or a gossiped
        #: batch names its transactions by those, and what is held here need not be parsed.
        self._by_bytes: dict[bytes, Transaction] = {}

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._txs

    def get(self, tx_id: str) -> Transaction | None:
        return self._txs.get(tx_id)

    def by_canonical(self, raw: bytes) -> Transaction | None:
        """The pending transaction whose canonical envelope is `raw`, if any."""
        return self._by_bytes.get(raw)

    def add(self, tx: Transaction) -> bool:
        """Admit `tx`; False if it was already here."""
        if tx.id in self._txs:
            return False
        if len(self._txs) >= self.capacity:
            raise MempoolFullError(
                f"this node holds {self.capacity} pending transactions; retry shortly"
            )
        self._txs[tx.id] = tx
        self._by_bytes[tx.canonical()] = tx
        return True

    def peek(self, limit: int) -> list[Transaction]:
        """The oldest `limit` transactions, left in place until they commit."""
        out = []
        for tx in self._txs.values():
            if len(out) >= limit:
                break
            out.append(tx)
        return out

    def remove(self, tx_ids: Iterable[str]) -> None:
        for tx_id in tx_ids:
            tx = self._txs.pop(tx_id, None)
            if tx is not None:
                del self._by_bytes[tx.canonical()]
