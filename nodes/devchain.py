"""A chain built without the network: every validator key is at hand, so each block is
certified on the spot by a quorum of precommits. For demos, tests and benchmarks that need
a real, fully signed chain; consortium nodes agree on blocks with `nodes.consensus`.

Blocks go through the same rules as on a node: `ledger.chain.check_next` for the header
and `ledger.validate.check_txs` with the domain rules (traceability.validity) for every
transaction, before they are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ledger.block import Block, CommitCertificate, Vote
from ledger.chain import ChainState, advance, build_block, check_next
from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.store import Store
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction
from ledger.validate import check_txs
from ledger.verify import restore_chain
from traceability.validity import TraceRules, trace_rules


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
        #: The domain rules (traceability.validity); without a store there is no history
        #: for a recall to trace.
        self.rules: TraceRules = trace_rules(store, genesis)
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
        tip = restore_chain(store, genesis, rules=trace_rules)
        assert isinstance(tip.rules, TraceRules)
        chain.state, chain.membership, chain.last_commit, chain.rules = (
            tip.state,
            tip.membership,
            tip.last_commit,
            tip.rules,
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
        rules = self.rules.begin(height, time)
        membership = check_txs(
            txs, self.membership, height=height, time=time, known=self.known, rules=rules
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
            self.store.save_block(block, commit, nodes, rules.tallies())
        self.seen.update(tx.id for tx in txs)
        self.membership = membership
        self.rules = rules.result()
        self.state = advance(self.state, block, membership.validators)
        self.last_commit = commit
        return block
