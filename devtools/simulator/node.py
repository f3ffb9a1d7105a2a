"""One simulated validator: a consensus state machine and the host stub that drives it.

The host owns what the machine must not: the chain state and committed blocks, the
persisted sign state, the evidence pool, a mempool, timers and the network. It follows the
action contract of `nodes.consensus.state_machine` to the letter (persist before anything
that follows), and does the two gossip duties the paper assumes of the network layer:
re-sending `gossip()` while stalled, and answering a peer that is behind with the
`Decision`s it is missing.

`Store` is what survives a crash; everything else on `Node` is lost with the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.block import Block, CommitCertificate, Vote
from ledger.chain import ChainState, advance, build_block, check_next
from ledger.errors import LedgerError
from ledger.evidence import DuplicateVote
from nodes.consensus import (
    Action,
    Broadcast,
    Commit,
    ConsensusState,
    EvidencePool,
    PersistSignState,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
    SignState,
    Timeout,
)
from nodes.consensus.messages import Decision, Evidence, decode, parse

from .network import Raw
from .world import block_time, registry, tx_pool, validator_id, validator_key

if TYPE_CHECKING:
    from .simulation import Simulation

TXS_PER_BLOCK = 2
DECISION_COOLDOWN = 1.0  # seconds before the same Decision is sent to the same peer again
DECISIONS_PER_REPLY = 8
FUTURE_DECISION_HEIGHTS = 64
GOSSIP_INTERVAL = 1.0


class Crashed(Exception):
    """Raised inside a batch of actions when the fault plan crashes the node mid-batch."""


@dataclass
class Store:
    """The durable part of a node: what a restart reads back."""

    chain: ChainState
    blocks: list[Block] = field(default_factory=list)
    certs: list[CommitCertificate] = field(default_factory=list)
    sign_state: dict[str, Any] | None = None  # as JSON, like a file on disk
    evidence: EvidencePool = field(default_factory=EvidencePool)
    tx_ids: set[str] = field(default_factory=set)


class Node:
    def __init__(self, sim: Simulation, index: int, chain: ChainState) -> None:
        self.sim = sim
        self.index = index
        self.id = validator_id(index)
        self.key = validator_key(index)
        self.store = Store(chain)
        self.honest = True
        self.adversary: Any = None  # a byzantine.Adversary for faulty nodes
        self.machine_class: type[ConsensusState] = sim.machine_class
        self.machine: ConsensusState | None = None
        self.epoch = 0  # bumped by every crash: timers of a dead process never fire
        self.crash_after: int | None = None  # crash after this many more actions
        self._future: dict[int, list[Decision]] = {}
        self._replied: dict[tuple[int, int], float] = {}
        self._progress: int | None = None
        self._mempool_floor = 0

    # -- life cycle ------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.machine is not None

    def boot(self) -> None:
        saved = self.store.sign_state
        self.machine = self.machine_class(
            self.store.chain,
            validator_id=self.id,
            key=self.key,
            valid=self.valid,
            config=self.sim.config,
            evidence_committed=self.store.evidence.is_committed,
            sign_state=SignState.from_json(saved) if saved is not None else None,
        )
        self.sim.trace.add(self.sim.clock.now, "boot", self.index, f"h{self.machine.height}")
        self.sim.clock.after(GOSSIP_INTERVAL, self.gossip_tick, self.epoch)
        self.run(self.machine.start)

    def crash(self) -> None:
        if self.machine is not None and self.honest:
            self.sim.checker.on_guard(self.id, self.machine.guard_conflicts, self.sim.clock.now)
        self.machine = None
        self.epoch += 1
        self.crash_after = None
        self._future.clear()
        self._replied.clear()
        self._progress = None
        self.sim.trace.add(self.sim.clock.now, "crash", self.index)

    def run(self, step: Callable[[], list[Action]]) -> None:
        """Run one machine input and execute its actions; a mid-batch crash stops here."""
        try:
            self.execute(step())
        except Crashed:
            self.crash()
            self.sim.crashed(self)

    # -- inputs ----------------------------------------------------------------------------
    def deliver(self, src: int, payload: Any) -> None:
        machine = self.machine
        if machine is None:
            return
        if isinstance(payload, Raw):
            try:
                data = payload.data
                message = parse(data) if isinstance(data, bytes | str) else decode(data)
            except LedgerError:
                self.sim.stats["undecodable"] += 1
                return
        else:
            message = payload
        if self.adversary is not None:
            self.adversary.observe(message)
        if isinstance(message, Evidence):  # about any past height: no catch-up meaning
            self.run(lambda: machine.on_message(message))
            return
        if message.height < machine.height:
            if not isinstance(message, Decision):
                self._reply_decisions(src, message.height)
            return
        if isinstance(message, Decision) and message.height > machine.height:
            self._keep_future(message)
            return
        self.run(lambda: machine.on_message(message))

    def timer(self, epoch: int, timeout: Timeout) -> None:
        if epoch == self.epoch and self.machine is not None:
            machine = self.machine
            self.sim.trace.add(
                self.sim.clock.now,
                "timeout",
                self.index,
                f"{timeout.step.label} h{timeout.height} r{timeout.round}",
            )
            self.run(lambda: machine.on_timeout(timeout))

    def gossip_tick(self, epoch: int) -> None:
        """The gossip layer: while no height was decided since the last tick, re-send what
        we signed and our proof of lock (rounds moving on is not progress)."""
        if epoch != self.epoch or self.machine is None:
            return
        machine = self.machine
        progress = machine.height
        if progress == self._progress:
            for message in machine.gossip():
                self.sim.broadcast(self, message)
        self._progress = progress
        self.sim.clock.after(GOSSIP_INTERVAL, self.gossip_tick, epoch)

    def feed_decisions(self, epoch: int) -> None:
        """Decisions that arrived before this node reached their height."""
        if epoch != self.epoch or self.machine is None:
            return
        machine = self.machine
        for decision in self._future.pop(machine.height, []):
            if self.machine is not machine or decision.height != machine.height:
                break
            self.run(lambda d=decision: machine.on_message(d))

    # -- actions ---------------------------------------------------------------------------
    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if self.crash_after is not None:
                if self.crash_after == 0:
                    raise Crashed
                self.crash_after -= 1
            self._do(action)

    def _do(self, action: Action) -> None:
        machine = self.machine
        assert machine is not None
        now = self.sim.clock.now
        if isinstance(action, PersistSignState):
            self.store.sign_state = action.state.to_json()
            if self.honest:
                for vote in action.state.votes:
                    self.sim.checker.on_signed(vote, now)
        elif isinstance(action, Broadcast):
            if self.honest and isinstance(action.message, Vote):
                self.sim.checker.on_signed(action.message, now)
            self.sim.broadcast(self, action.message)
        elif isinstance(action, ScheduleTimeout):
            self.sim.clock.after(action.delay, self.timer, self.epoch, action.timeout)
        elif isinstance(action, RequestProposal):
            block = self.build_block()
            self.execute(machine.on_proposal_value(block))
        elif isinstance(action, RecordEvidence):
            if self.store.evidence.add(action.record):  # new to us: tell the others
                self.sim.broadcast(self, Evidence(action.record))
            if self.honest:
                evidence = DuplicateVote.from_json(action.record)
                self.sim.checker.on_evidence(evidence.key, evidence.height)
        elif isinstance(action, Commit):
            self._commit(action.block, action.certificate)

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        store, now = self.store, self.sim.clock.now
        store.blocks.append(block)
        store.certs.append(cert)
        store.chain = advance(store.chain, block)
        store.tx_ids.update(tx.id for tx in block.txs)
        store.evidence.mark_committed(block)
        self.sim.trace.add(now, "commit", self.index, f"h{block.height} {block.hash[:8]}")
        if self.honest:
            self.sim.committed(self, block, cert)
        machine = self.machine
        assert machine is not None
        self.execute(machine.new_height(store.chain))
        if machine.height in self._future:
            self.sim.clock.after(0.0, self.feed_decisions, self.epoch)

    # -- the host's chain rules and block building -----------------------------------------
    def valid(self, block: Block) -> str | None:
        """The host's validity predicate: chain rules, signed, registered, new transactions.
        Memoised per (head, block object) across nodes: same inputs, same verdict."""
        chain = self.store.chain
        key = (chain.head_hash, id(block))
        found = self.sim.validity.get(key)
        if found is None or found[0] is not block:
            found = (block, self._check(chain, block))
            self.sim.validity[key] = found
        return found[1]

    def _check(self, chain: ChainState, block: Block) -> str | None:
        try:
            check_next(chain, block)
        except LedgerError as exc:
            return f"chain rule: {exc}"
        seen: set[str] = set()
        for tx in block.txs:
            key = registry().get(tx.signer)
            if key is None or tx.chain_id != chain.chain_id:
                return "unknown signer or chain"
            try:
                tx.verify_signature(key)
            except LedgerError as exc:
                return f"transaction: {exc}"
            if tx.id in seen or tx.id in self.store.tx_ids:
                return "duplicate transaction"
            seen.add(tx.id)
        return None

    def build_block(self) -> Block:
        store = self.store
        pool = tx_pool()
        while self._mempool_floor < len(pool) and pool[self._mempool_floor].id in store.tx_ids:
            self._mempool_floor += 1
        txs = []
        for tx in pool[self._mempool_floor :]:
            if len(txs) == TXS_PER_BLOCK:
                break
            if tx.id not in store.tx_ids:
                txs.append(tx)
        chain = store.chain
        return build_block(
            chain,
            txs=txs,
            time=block_time(self.sim.clock.now, chain.head_time),
            proposer=self.id,
            last_commit=store.certs[-1] if store.certs else None,
            evidence=store.evidence.pending(self.sim.config.max_block_evidence),
        )

    # -- catch-up duties -----------------------------------------------------------------
    def _reply_decisions(self, peer: int, height: int) -> None:
        """A peer sent a message of a height we have committed: send it what it misses."""
        now, store = self.sim.clock.now, self.store
        last = min(store.chain.height, height + DECISIONS_PER_REPLY - 1)
        for h in range(height, last + 1):
            sent = self._replied.get((peer, h))
            if sent is not None and now - sent < DECISION_COOLDOWN:
                continue
            self._replied[(peer, h)] = now
            self.sim.send(self, peer, Decision(store.blocks[h - 1], store.certs[h - 1]))

    def _keep_future(self, decision: Decision) -> None:
        """Hold a decision for a height ahead of ours (bounded: a few per height, and only
        so far ahead); `feed_decisions` hands it over once the machine gets there."""
        assert self.machine is not None
        if decision.height > self.machine.height + FUTURE_DECISION_HEIGHTS:
            return
        kept = self._future.setdefault(decision.height, [])
        if len(kept) < 3:
            kept.append(decision)
