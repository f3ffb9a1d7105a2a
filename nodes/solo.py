"""A single-process node that holds every validator key: the whole consortium in one
process, certifying each block on the spot. For development, API tests and trying the
API without starting a cluster; `nodes.runtime` runs real consortium members."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.store import Store
from ledger.timefmt import format_time, now, parse_time
from ledger.validate import select_txs

from .devchain import DevChain
from .service import NodeCore


class SoloNode(NodeCore):
    def __init__(
        self,
        genesis: Genesis,
        validator_keys: dict[str, PrivateKey],
        store: Store,
        *,
        block_interval: float = 0.2,
        max_block_txs: int = 2000,
    ) -> None:
        self.chain = DevChain.resume(genesis, validator_keys, store)
        super().__init__(genesis, store, self.chain.membership, rules=self.chain.rules)
        self.block_interval = block_interval
        self.max_block_txs = max_block_txs

    def block_time(self) -> str:
        """Wall-clock time, but always after the previous block's."""
        floor = parse_time(self.chain.state.head_time) + timedelta(milliseconds=1)
        return max(now(), format_time(floor))

    def produce(self) -> Block | None:
        """Commit one block of pending transactions, if there are any."""
        if not len(self.mempool):
            return None
        height = self.chain.state.height + 1
        time = self.block_time()
        chosen, rejected, _ = select_txs(
            self.mempool.peek(self.max_block_txs),
            self.chain.membership,
            height=height,
            time=time,
            known=self.store.known_tx_ids,
            rules=self.chain.rules.begin(height, time),
        )
        self.rejected(rejected)
        if not chosen:
            return None
        block = self.chain.commit_block(chosen, time)
        self.committed(block, self.chain.membership, self.chain.rules)
        return block

    async def run(self) -> None:
        """Produce blocks until cancelled."""
        while True:
            await asyncio.sleep(self.block_interval)
            self.produce()
