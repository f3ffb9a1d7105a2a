"""A faulty validator, for tests only: the real consensus runtime (`nodes.runtime.Node`) and
API with the domain rules taken out, holding validly signed transactions that no honest
node would admit. Whenever it is the proposer it proposes them, as a validator that skips
the rules would.

It leads each proposal with the next of them in turn, so that every one is judged first
by the honest validators (they refuse a block at its first bad transaction). It writes
down every proposal it makes and every vote it receives, one JSON object a
line, so a test can read what the honest validators answered (their votes are signed:
what they say is what they sent).

    python -m tests.byzantine_node NODE_TOML PLANTED_TXS_JSON RECORD_JSONL
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from api.node_main import serve, setup_logging
from ledger.block import Vote
from ledger.errors import LedgerError
from ledger.membership import Membership
from ledger.tx import Transaction
from nodes.config import NodeConfig
from nodes.consensus import messages
from nodes.consensus.actions import Action, Broadcast
from nodes.runtime import Node


class AdmitEverything:
    """Domain rules that judge nothing (`ledger.validate.DomainRules` and `BlockRules` at
    once): the chain's own rules, signatures and write policy, still apply."""

    #: the running totals a block adds: none, as nothing is judged
    block_tallies: tuple = ()

    def begin(self, height: int, time: str | None = None) -> AdmitEverything:
        return self

    def prefetch(self, store: object, height: int, txs: object) -> None:
        return None  # nothing is looked up

    def check(self, tx: Transaction, membership: Membership) -> None:
        return None

    def apply(self, tx: Transaction) -> None:
        return None

    def result(self) -> AdmitEverything:
        return self

    def tallies(self) -> list:
        return []


class FaultyNode(Node):
    def __init__(self, config: NodeConfig, planted: list[Transaction], record: TextIO) -> None:
        super().__init__(config)
        self.rules = AdmitEverything()  # type: ignore[assignment]
        self._record = record
        self._planted = list(planted)
        for tx in planted:  # straight into the mempool: not gossiped, proposed
            self.mempool.add(tx)

    def _rotate_planted(self) -> None:
        """The planted transaction that led this proposal goes behind the others."""
        self._planted.append(self._planted.pop(0))
        self.mempool.remove(tx.id for tx in self._planted)
        for tx in self._planted:
            self.mempool.add(tx)

    def _write(self, entry: dict[str, Any]) -> None:
        self._record.write(json.dumps(entry, sort_keys=True) + "\n")
        self._record.flush()

    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Broadcast) and isinstance(action.message, messages.Proposal):
                proposal = action.message
                self._write(
                    {
                        "kind": "proposal",
                        "height": proposal.height,
                        "round": proposal.round,
                        "block_hash": proposal.block.hash,
                        "txs": [tx.id for tx in proposal.block.txs],
                    }
                )
                self._rotate_planted()
        await super()._execute(actions)

    def _on_peer_message(self, peer: str, message: dict[str, Any]) -> None:
        if message.get("kind") == "consensus":
            try:
                decoded = messages.decode(message.get("msg"), self.mempool.by_canonical)
            except LedgerError:
                decoded = None
            if isinstance(decoded, Vote):
                self._write(
                    {
                        "kind": decoded.type,
                        "height": decoded.height,
                        "round": decoded.round,
                        "block_hash": decoded.block_hash,
                        "validator": decoded.validator,
                    }
                )
        super()._on_peer_message(peer, message)


def main(config_path: Path, planted_path: Path, record_path: Path) -> None:
    config = NodeConfig.load(config_path)
    setup_logging()
    planted = [Transaction.from_json(tx) for tx in json.loads(planted_path.read_text())]
    with record_path.open("a", encoding="utf-8") as record:
        asyncio.run(serve(FaultyNode(config, planted, record)))


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:4]))
