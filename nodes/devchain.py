"""A chain built without the network: every validator key is at hand, so each block is
certified on the spot by a quorum of precommits. For demos, tests and benchmarks that need
a real, fully signed chain; consortium nodes agree on blocks with `nodes.consensus`.

Blocks go through the same rules as on a node: `ledger.chain.check_next` for the header
and the membership's `check_tx` for every transaction, before they are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ledger.block import Block, CommitCertificate, Vote
from ledger.chain import ChainState, advance, build_block, check_next
from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.recall import ChainLookup, RecallIndex, store_lookup
from ledger.store import Store
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction
from ledger.validate import check_txs
from ledger.verify import restore_chain


class DevChain:
    def __init__(
        self,
        genesis: Genesis,
        validator_keys: dict[str, PrivateKey],
        store: Store | None = None,
        *,
        block_interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self.genesis = genesis
        self.keys = validator_keys
        self.store = store
        self.interval = block_interval
        self.state: ChainState = genesis.initial_state()
        self.membership = genesis.membership()
        self.last_commit: CommitCertificate | None = None
        self.recalls = RecallIndex()
        #: Without a store there is no history for a recall to trace (see ledger.recall).
        self.lookup: ChainLookup | None = store_lookup(store) if store is not None else None
        self.seen: set[str] = set()
        self.known: Callable[[list[str]], set[str]] = (
            store.known_tx_ids if store is not None else (lambda ids: self.seen & set(ids))
        )
        if store is not None:
            store.bind_chain(genesis.chain_id, genesis.hash, genesis.to_json())

    @classmethod
    def resume(
        cls, genesis: Genesis, validator_keys: dict[str, PrivateKey], store: Store
    ) -> DevChain:
        """Go on from what `store` holds, after verifying all of it."""
        chain = cls(genesis, validator_keys, store)
        tip = restore_chain(store, genesis)
        chain.state, chain.membership, chain.last_commit, chain.recalls = (
            tip.state,
            tip.membership,
            tip.last_commit,
            tip.recalls,
        )
        return chain

    def certify(self, block: Block, round_: int = 0) -> CommitCertificate:
        """Precommits from a quorum of validators (those whose keys we hold, in set order)."""
        votes = []
        for validator in self.state.validators.validators:
            key = self.keys.get(validator.id)
            if key is not None and len(votes) < self.state.validators.quorum:
                vote = Vote(
                    self.state.chain_id, block.height, round_, "precommit", block.hash, validator.id
                )
                votes.append(vote.signed(key))
        return CommitCertificate.from_votes(votes)

    def next_time(self) -> str:
        return format_time(parse_time(self.state.head_time) + self.interval)

    def commit_block(self, txs: list[Transaction], time: str | None = None) -> Block:
        height = self.state.height + 1
        time = time or self.next_time()
        recalls = self.recalls.begin(height, self.lookup)
        membership = check_txs(
            txs, self.membership, height=height, time=time, known=self.known, recalls=recalls
        )
        proposer = self.state.validators.proposer(height, 0).id
        block = build_block(
            self.state,
            txs=txs,
            time=time,
            proposer=proposer,
            last_commit=self.last_commit,
        )
        nodes = check_next(self.state, block)
        commit = self.certify(block)
        if self.store is not None:
            self.store.save_block(block, commit, nodes)
        self.seen.update(tx.id for tx in txs)
        self.membership = membership
        self.recalls = recalls.result()
        self.state = advance(self.state, block, membership.validators)
        self.last_commit = commit
        return block
