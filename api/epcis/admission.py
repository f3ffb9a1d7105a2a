"""Admission of transactions through the API: the node's own rules (the block rule,
which refuses an eventID already on the chain: traceability.epcis.uniqueness), plus what
the API adds for EPCIS events: the event is valid EPCIS 2.0 / CBV 2.0, and its eventID is
not already pending on this node (a second capture of the same event is a duplicate, 409,
at once rather than when a block is built).

Work is split by thread: `prepare` (parsing, EPCIS validation, hash IDs) is pure and
runs off the event loop; `admit` touches the node's mempool and runs on the loop, like
the node's block production, so the two never race.

An event signed without an eventID claims nothing on the chain; it is known by its GS1
event hash ID, which this node checks against its event index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from ledger.errors import DuplicateError, LedgerError
from ledger.timefmt import now
from ledger.tx import Transaction
from nodes.service import NodeCore, TxStatus
from traceability.epcis.index import EventIndex
from traceability.epcis.problems import relabel
from traceability.epcis.records import EPCIS_TX_TYPE, check_payload, event_id_of


@dataclass(frozen=True)
class Prepared:
    """One transaction checked off the loop, or why it cannot be admitted."""

    index: int
    tx: Transaction | None
    event_id: str | None = None
    error: LedgerError | None = None
    #: the event carries no eventID: `event_id` is its GS1 event hash ID
    hashed: bool = False
    #: an error declaration, which repeats the eventID of the event it declares erroneous
    declaration: bool = False

    @property
    def claim(self) -> str | None:
        """What it records once: an event, or the declaration that an event is erroneous."""
        if self.event_id is None:
            return None
        return f"error declaration for {self.event_id}" if self.declaration else self.event_id


def prepare_one(index: int, tx: Transaction, where: str = "") -> Prepared:
    """Check what the API adds to the node's rules; `where` prefixes error paths."""
    try:
        if tx.type != EPCIS_TX_TYPE:
            return Prepared(index, tx)
        event = check_payload(tx.payload, "body.payload")
        return Prepared(
            index,
            tx,
            event_id_of(event),
            hashed="eventID" not in event,
            declaration="errorDeclaration" in event,
        )
    except LedgerError as exc:
        return Prepared(index, tx, None, relabel(exc, where) if where else exc)


def prepare_json(items: Iterable[Any], base: str = "transactions") -> list[Prepared]:
    """Parse envelopes (already-decoded JSON) and check their EPCIS payloads."""
    prepared = []
    for i, item in enumerate(items):
        where = f"{base}[{i}]"
        try:
            tx = Transaction.from_json(item)
        except LedgerError as exc:
            prepared.append(Prepared(i, None, None, relabel(exc, where)))
            continue
        prepared.append(prepare_one(i, tx, where))
    return prepared


class Admission:
    def __init__(self, node: NodeCore, index: EventIndex) -> None:
        self.node = node
        self.index = index
        self._pending: dict[str, str] = {}  # eventID -> id of the pending tx recording it

    async def recorded(self, prepared: list[Prepared]) -> dict[str, str]:
        """Hash ID -> committed tx id, for the prepared events without an eventID already
        on the chain (the block rule judges eventIDs)."""
        ids = [
            p.event_id
            for p in prepared
            if p.hashed and not p.declaration and p.event_id and p.error is None
        ]
        if not ids:
            return {}
        return await anyio.to_thread.run_sync(self.index.known_event_ids, ids)

    def _duplicate(self, event_id: str, recorded: dict[str, str], batch: set[str]) -> None:
        if event_id in recorded:
            raise DuplicateError(
                f"EPCIS event {event_id} is already recorded (transaction {recorded[event_id]})"
            )
        if event_id in batch:
            raise DuplicateError(f"EPCIS event {event_id} appears twice in this submission")
        tx_id = self._pending.get(event_id)
        if tx_id is not None:
            if tx_id in self.node.mempool:
                raise DuplicateError(
                    f"EPCIS event {event_id} is already pending (transaction {tx_id})"
                )
            del self._pending[event_id]  # committed (the index knows) or rejected

    def gate(self, count: int) -> None:
        """Raise BusyError (503, Retry-After) unless the node takes `count` more client
        transactions now: called before any of them is parsed or verified."""
        self.node.intake.admit(len(self.node.mempool), count)

    def precheck(self, items: list[Prepared], recorded: dict[str, str]) -> None:
        """Raise the first reason any of `items` would be refused, changing nothing."""
        batch: set[str] = set()
        height = self.node.height + 1
        time = now()
        # The block rule over the batch in order, as one block holding it would be judged:
        # chain rules and domain rules (recalls included), each item seeing the earlier ones.
        membership = self.node.membership
        rules = self.node.rules.begin(height, time)
        free = self.node.mempool.capacity - len(self.node.mempool)
        if len(items) > free:
            from nodes.mempool import MempoolFullError

            raise MempoolFullError(f"the node has room for {free} more pending transactions")
        committed = self.node.committed_among(i.tx.id for i in items if i.tx is not None)
        for item in items:
            try:
                if item.error is not None:
                    raise item.error
                assert item.tx is not None
                if item.claim is not None:
                    self._duplicate(item.claim, recorded, batch)
                    batch.add(item.claim)
                if item.tx.id in self.node.mempool or item.tx.id in committed:
                    raise DuplicateError(
                        f"transaction {item.tx.id} is already pending or committed"
                    )
                membership.check_tx(item.tx, height, time)
                rules.check(item.tx, membership)
                membership = membership.apply(item.tx, height)
                rules.apply(item.tx)
            except LedgerError as exc:
                if exc is item.error:
                    raise
                raise relabel(exc, f"transactions[{item.index}]") from None

    def committed_among(self, items: list[Prepared]) -> set[str]:
        """Ids of these prepared transactions the chain holds: one lookup for a batch,
        made on the event loop right before admitting it (see `admit`); the claims the
        block rules will look up for the batch are read with it."""
        txs = [i.tx for i in items if i.tx and i.error is None]
        self.node.prefetch(txs)
        return self.node.committed_among(tx.id for tx in txs)

    def admit(
        self,
        item: Prepared,
        recorded: dict[str, str],
        batch: set[str],
        committed: Collection[str] | None = None,
    ) -> TxStatus:
        """Submit one prepared transaction to the node (on the event loop). `committed`:
        from `committed_among` of its batch, with no await in between; None looks it up."""
        if item.error is not None:
            raise item.error
        assert item.tx is not None
        if item.claim is not None:
            self._duplicate(item.claim, recorded, batch)
        status = self.node.submit(item.tx, committed=committed)
        if item.claim is not None:
            self._pending[item.claim] = item.tx.id
            batch.add(item.claim)
        if len(self._pending) > 2 * max(len(self.node.mempool), 1000):
            self._prune()
        return status

    def _prune(self) -> None:
        mempool = self.node.mempool
        self._pending = {e: t for e, t in self._pending.items() if t in mempool}
