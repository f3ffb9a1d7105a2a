"""What a node offers the API it serves: admit a transaction, say where it is, wait for
it to commit. `NodeCore` implements that once over a mempool and the node's store;
the consensus runtime and the single-process dev node both build on it.

A transaction is judged on admission by the same rules a block applies
(`ledger.validate`), against the chain as it is now, so a client learns at once
(HTTP 4xx) that a transaction can never commit. One that was admitted but fails when
a block is built (say, its signer was revoked meanwhile) is reported as rejected with
the reason.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from ledger.block import Block
from ledger.errors import DuplicateError, LedgerError
from ledger.genesis import Genesis
from ledger.membership import Membership
from ledger.store import Store
from ledger.timefmt import now
from ledger.tx import Transaction
from ledger.validate import Rejected

from .mempool import Mempool

TxState = Literal["pending", "committed", "rejected", "unknown"]


@dataclass(frozen=True)
class TxStatus:
    id: str
    state: TxState
    height: int | None = None
    reason: str | None = None
    error: str | None = None


class NodeCore:
    """Mempool, admission and status tracking over one node's store."""

    def __init__(
        self,
        genesis: Genesis,
        store: Store,
        membership: Membership,
        *,
        mempool_capacity: int = 100_000,
        remembered_rejections: int = 100_000,
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.membership = membership
        self.mempool = Mempool(mempool_capacity)
        self._rejected: OrderedDict[str, LedgerError] = OrderedDict()
        self._remember = remembered_rejections
        self._committed = asyncio.Event()
        self.height = store.height()

    # -- admission ------------------------------------------------------------------------
    def submit(self, tx: Transaction) -> TxStatus:
        """Admit a signed transaction or raise why it can never commit.

        Raises DuplicateError when it is already pending or committed (a replay).
        """
        if tx.id in self.mempool:
            raise DuplicateError(f"transaction {tx.id} is already pending")
        if self.store.known_tx_ids([tx.id]):
            raise DuplicateError(f"transaction {tx.id} is already committed")
        self.membership.check_tx(tx, self.height + 1, now())
        self.mempool.add(tx)
        self._rejected.pop(tx.id, None)
        return TxStatus(tx.id, "pending")

    # -- status ---------------------------------------------------------------------------
    def status(self, tx_id: str) -> TxStatus:
        if tx_id in self.mempool:
            return TxStatus(tx_id, "pending")
        stored = self.store.tx(tx_id)
        if stored is not None:
            return TxStatus(tx_id, "committed", height=stored.height)
        reason = self._rejected.get(tx_id)
        if reason is not None:
            return TxStatus(tx_id, "rejected", reason=reason.message, error=reason.code)
        return TxStatus(tx_id, "unknown")

    async def wait(self, tx_id: str, timeout: float) -> TxStatus:
        """Block until `tx_id` is committed or rejected, or `timeout` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            status = self.status(tx_id)
            remaining = deadline - loop.time()
            if status.state in ("committed", "rejected", "unknown") or remaining <= 0:
                return status
            event = self._committed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return self.status(tx_id)

    # -- hooks for whoever commits blocks ----------------------------------------------------
    def committed(self, block: Block, membership: Membership) -> None:
        """Call after `block` is durable in the store: wakes every waiter."""
        self.height = block.height
        self.membership = membership
        self.mempool.remove(tx.id for tx in block.txs)
        event, self._committed = self._committed, asyncio.Event()
        event.set()

    def rejected(self, items: list[Rejected]) -> None:
        """Transactions dropped while building a block, with their reasons."""
        for item in items:
            self.mempool.remove([item.tx.id])
            self._rejected[item.tx.id] = item.reason
            self._rejected.move_to_end(item.tx.id)
        while len(self._rejected) > self._remember:
            self._rejected.popitem(last=False)
        if items:
            event, self._committed = self._committed, asyncio.Event()
            event.set()
