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
import contextlib
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ledger.block import Block
from ledger.errors import DuplicateError, LedgerError
from ledger.genesis import Genesis
from ledger.membership import Membership
from ledger.store import Store
from ledger.timefmt import format_time
from ledger.tx import Transaction
from ledger.validate import Rejected
from traceability.validity import TraceRules, trace_rules

from .intake import Intake
from .mempool import Mempool

TxState = Literal["pending", "committed", "rejected", "unknown"]
RECENT_BLOCKS = 16


@dataclass(frozen=True)
class TxStatus:
    id: str
    state: TxState
    height: int | None = None
    reason: str | None = None
    error: str | None = None


class Wakeup:
    """Wakes every coroutine waiting for the next commit, on whichever event loop it waits:
    an asyncio.Event belongs to the first loop that waits on it, and a node's API may be
    driven from more than one (test clients each run their own), or be woken from the
    thread that commits."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    async def wait(self, timeout: float) -> None:
        """Until the next `fire`, or `timeout` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, max(0.0, timeout))
        finally:
            self._waiters.discard(waiter)

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            loop = waiter.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
        rules: TraceRules | None = None,
        intake_floor: int = 2000,
    ) -> None:
        self.genesis = genesis
        self.store = store
        self.membership = membership
        #: The domain rules' state after the last committed block (traceability.validity).
        self.rules = rules if rules is not None else trace_rules(store)
        self.mempool = Mempool(mempool_capacity)
        #: What clients may add to the mempool: what the cluster commits in a few seconds.
        self.intake = Intake(intake_floor)
        self._rejected: OrderedDict[str, LedgerError] = OrderedDict()
        self._remember = remembered_rejections
        self._commits = Wakeup()
        self.height = store.height()
        #: The last few committed blocks, as objects: what follows the store (the API's
        #: event index) reads them from here instead of parsing them back from the store.
        self._recent: OrderedDict[int, Block] = OrderedDict()

    # -- admission ------------------------------------------------------------------------
    def submit(self, tx: Transaction, *, committed: Collection[str] | None = None) -> TxStatus:
        """Admit a signed transaction or raise why it can never commit.

        Raises DuplicateError when it is already pending or committed (a replay).
        `committed`: when admitting a batch, which of its ids the store holds, looked up
        once for the batch with `committed_among` just before (one query, not one per
        transaction); None looks this one up.
        """
        if tx.id in self.mempool:
            raise DuplicateError(f"transaction {tx.id} is already pending")
        known = (tx.id in committed) if committed is not None else self.store.known_tx_ids([tx.id])
        if known:
            raise DuplicateError(f"transaction {tx.id} is already committed")
        self.check(tx)
        self.mempool.add(tx)
        self._rejected.pop(tx.id, None)
        return TxStatus(tx.id, "pending")

    def check(self, tx: Transaction) -> None:
        """Raise why `tx` could not come next on the chain as it is: the block rule itself
        (chain and domain), as a proposal holding it alone would be judged."""
        at = datetime.now(UTC)
        self.membership.check_tx(tx, self.height + 1, at)
        self.rules.begin(self.height + 1, format_time(at)).check(tx, self.membership)

    def prefetch(self, txs: Collection[Transaction]) -> None:
        """Before admitting a batch: what the block rules will ask the store about it,
        read in one query (see TraceRules.prefetch)."""
        self.rules.prefetch(self.store, self.height + 1, txs)

    def committed_among(self, tx_ids: Iterable[str]) -> set[str]:
        """Which of these ids (of a batch about to be submitted) the store holds."""
        return self.store.known_tx_ids([i for i in tx_ids if i not in self.mempool])

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
            await self._commits.wait(remaining)

    async def wait_beyond(self, height: int, timeout: float) -> int:
        """Wait until a block above `height` is committed, or `timeout` seconds pass; the
        committed height then (what follows commits, such as subscriptions, waits here)."""
        if self.height <= height:
            await self._commits.wait(timeout)
        return self.height

    def recent_block(self, height: int) -> Block | None:
        """Block `height` if it is among the last RECENT_BLOCKS this node committed."""
        return self._recent.get(height)

    # -- hooks for whoever commits blocks ----------------------------------------------------
    def committed(
        self, block: Block, membership: Membership, rules: TraceRules | None = None
    ) -> None:
        """Call after `block` is durable in the store: wakes every waiter."""
        self._recent[block.height] = block
        while len(self._recent) > RECENT_BLOCKS:
            self._recent.popitem(last=False)
        self.height = block.height
        self.membership = membership
        if rules is not None:
            self.rules = rules
        self.mempool.remove(tx.id for tx in block.txs)
        self.intake.committed(len(block.txs))
        self._commits.fire()

    def rejected(self, items: list[Rejected]) -> None:
        """Transactions dropped while building a block, with their reasons."""
        for item in items:
            self.mempool.remove([item.tx.id])
            self._rejected[item.tx.id] = item.reason
            self._rejected.move_to_end(item.tx.id)
        while len(self._rejected) > self._remember:
            self._rejected.popitem(last=False)
        if items:
            self._commits.fire()
