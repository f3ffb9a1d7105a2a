"""Every second or two, a node seals the consumer observations its resolver recorded
(`traceability.codes.outbox`) into one `codes.scans` transaction signed with its own
validator key, and submits it like any other: the consortium's block rule judges it and
consensus commits it, so every node counts the same scans. Nothing is sent while idle.

One batch is in flight at a time; the next is sealed once it commits. A batch the chain
cannot take (a write policy without the type, say) is released, its entries kept here,
and tried again after `RETRY_AFTER` seconds; the node still counts them itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from ledger.crypto import PrivateKey
from ledger.errors import DuplicateError, LedgerError
from ledger.tx import MAX_TX_BYTES, Transaction
from traceability.codes.observations import TX_TYPE, Observations
from traceability.codes.outbox import Outbox

from .service import NodeCore

log = logging.getLogger("parktrace.scans")

#: Seconds between batches (PARKTRACE_SCAN_BATCH_MS sets it for a node).
INTERVAL = 1.5
#: Payload bytes a batch aims at, below the transaction limit (envelope, certificate id).
BUDGET = MAX_TX_BYTES - 4096
RETRY_AFTER = 30.0


class ScanBatcher:
    def __init__(
        self,
        node: NodeCore,
        outbox: Outbox,
        key: PrivateKey,
        signer: str,
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.outbox = outbox
        self.key = key
        self.signer = signer
        self.interval = interval
        self._clock = clock
        self._paused_until = 0.0

    @classmethod
    def for_validator(
        cls, node: NodeCore, outbox: Outbox, validator: str, key: PrivateKey, **kw: float
    ) -> ScanBatcher:
        """The batcher of validator `validator` (its certificate from the membership)."""
        fingerprint = node.membership.validator_certs[validator]
        return cls(node, outbox, key, fingerprint, **kw)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.step()
            except Exception:  # a full disk, say: scans wait in the outbox, the node runs on
                log.exception("sealing a batch of scans failed; trying again")

    def step(self) -> str | None:
        """Follow the batch in flight, or seal and submit the next; its id, if one is
        in flight afterwards."""
        for tx_id, envelope in self.outbox.sealed():
            state = self.node.status(tx_id).state
            if state == "committed":
                self.outbox.done(tx_id)
            elif state == "pending":
                return tx_id
            else:  # unknown after a restart, or rejected when a block was built
                return self._send(Transaction.from_json(json.loads(envelope)))
        if self._clock() < self._paused_until:
            return None
        waiting = self.outbox.waiting(BUDGET)
        if not waiting:
            return None
        payload = Observations.of([entry for _, entry in waiting]).to_payload()
        tx = Transaction.create(
            self.key,
            chain_id=self.node.genesis.chain_id,
            type=TX_TYPE,
            payload=payload,
            signer=self.signer,
        )
        self.outbox.seal(tx.id, tx.canonical().decode("utf-8"), [row for row, _ in waiting])
        return self._send(tx)

    def _send(self, tx: Transaction) -> str | None:
        try:
            self.node.submit(tx)
        except DuplicateError:
            if self.node.status(tx.id).state == "committed":
                self.outbox.done(tx.id)
                return None
            return tx.id  # pending already
        except LedgerError as exc:
            log.warning("a batch of scans was refused (%s); kept and retried later", exc.message)
            self.outbox.release(tx.id)
            self._paused_until = self._clock() + RETRY_AFTER
            return None
        return tx.id
