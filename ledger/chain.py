"""The chain rule: how the next block is built from the current head, and how a node
checks that a block it is given really is the next one.

Pure functions over `ChainState`; storage and networking live elsewhere. Transaction-level
rules (signatures, membership, policy, duplicates) are `validate.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import merkle
from .block import Block, CommitCertificate, Header, evidence_hash, tx_root
from .errors import BlockError, ChainMismatchError
from .timefmt import parse_time
from .tx import Transaction
from .validators import ValidatorSet


@dataclass(frozen=True)
class ChainState:
    """What a node must know of the chain to check the next block."""

    chain_id: str
    genesis_hash: str
    genesis_time: str
    validators: ValidatorSet
    height: int = 0
    last_header: Header | None = None
    log: merkle.Frontier | None = None
    #: The set that certified the last block; differs from `validators` right after a change.
    last_validators: ValidatorSet | None = None

    @property
    def head_hash(self) -> str:
        return self.last_header.hash if self.last_header else self.genesis_hash

    @property
    def head_time(self) -> str:
        return self.last_header.time if self.last_header else self.genesis_time

    def frontier(self) -> merkle.Frontier:
        """A private copy of the log frontier (states are immutable values)."""
        if self.log is None:
            return merkle.Frontier()
        return merkle.Frontier.from_list(self.log.size, self.log.to_list())


def _extend_log(
    state: ChainState, txs: list[Transaction]
) -> tuple[merkle.Frontier, list[tuple[int, int, bytes]]]:
    log = state.frontier()
    nodes: list[tuple[int, int, bytes]] = []
    for tx in txs:
        nodes.extend(log.append(tx.leaf_hash()))
    return log, nodes


def build_block(
    state: ChainState,
    *,
    txs: list[Transaction],
    time: str,
    proposer: str,
    last_commit: CommitCertificate | None,
    evidence: list[dict[str, Any]] | None = None,
) -> Block:
    """The proposer's side: assemble the next block over the current head."""
    evidence = evidence or []
    log, _ = _extend_log(state, txs)
    header = Header(
        chain_id=state.chain_id,
        height=state.height + 1,
        time=time,
        prev_hash=state.head_hash,
        tx_root=tx_root(txs),
        tx_count=len(txs),
        log_root=log.root().hex(),
        log_size=log.size,
        validators_hash=state.validators.hash(),
        last_commit_hash=last_commit.hash() if last_commit else None,
        evidence_hash=evidence_hash(evidence),
        proposer=proposer,
    )
    return Block(header, tuple(txs), tuple(evidence), last_commit)


def check_next(state: ChainState, block: Block) -> list[tuple[int, int, bytes]]:
    """Raise BlockError unless `block` correctly extends `state`.

    Returns the log nodes the block completes, for the store to persist.
    Checks the header's links and commitments, not the transactions' own validity.
    """
    h = block.header
    where = f"block {h.height}"
    if h.chain_id != state.chain_id:
        raise ChainMismatchError(f"{where} is for chain {h.chain_id!r}, not {state.chain_id!r}")
    if h.height != state.height + 1:
        raise BlockError(f"{where}: expected height {state.height + 1}")
    if h.prev_hash != state.head_hash:
        raise BlockError(f"{where}: prev_hash does not match the hash of block {state.height}")
    if parse_time(h.time) <= parse_time(state.head_time):
        raise BlockError(f"{where}: time {h.time} is not after the previous block's")
    if h.validators_hash != state.validators.hash():
        raise BlockError(f"{where}: validators_hash does not match the validator set")
    if state.validators.get(h.proposer) is None:
        raise BlockError(f"{where}: proposer {h.proposer!r} is not a validator")
    block.check_body()
    if state.height == 0:
        if block.last_commit is not None:
            raise BlockError(f"{where}: the first block has no previous commit")
    else:
        if block.last_commit is None:
            raise BlockError(f"{where}: missing the commit certificate of block {state.height}")
        block.last_commit.verify(
            state.validators,
            chain_id=state.chain_id,
            height=state.height,
            block_hash=state.head_hash,
        )
    log, nodes = _extend_log(state, list(block.txs))
    if log.size != h.log_size:
        raise BlockError(f"{where}: log_size {h.log_size} should be {log.size}")
    if log.root().hex() != h.log_root:
        raise BlockError(f"{where}: log_root does not match the ledger's transaction log")
    return nodes


def advance(state: ChainState, block: Block, validators: ValidatorSet | None = None) -> ChainState:
    """The state after `block` (already checked). A validator-set change takes effect here."""
    log, _ = _extend_log(state, list(block.txs))
    return replace(
        state,
        height=block.height,
        last_header=block.header,
        log=log,
        validators=validators or state.validators,
        last_validators=state.validators,
    )
