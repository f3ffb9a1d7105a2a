"""A consortium member's node: drives the pure consensus machine with asyncio.

One driver task takes events (peer messages, timeouts, proposal values, synced blocks)
from a single queue and feeds them to the machine one at a time, then carries out the
actions it returns, in order, awaiting each: the sign state is on disk before any vote
signed under it is sent, and a block is in the store before any client hears it
committed. Everything else (peer links, the API, timers, gossip) only puts events in
that queue, so the machine never sees two inputs at once. A sign state that cannot be
written stops the validator voting (its signed messages are held back), never the node,
until a retry writes it.

Heights without transactions: after a commit the node waits before starting the next
height until a transaction is pending, a peer has moved on, or `idle_ms` passes (a
heartbeat block). A proposer then waits at most `batch_ms` for a fuller block.

Catch-up: every node announces its height each second; a node behind a peer asks it for
the missing blocks and checks each one like any block (chain links, transactions,
certificate) before storing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time as wallclock
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ledger.block import Block, CommitCertificate, Vote, tx_from_text
from ledger.chain import ChainState, advance, build_block, check_next
from ledger.checkpoint import Checkpoint
from ledger.checkpoint import write as write_checkpoint
from ledger.crypto import PrivateKey
from ledger.errors import DuplicateError, LedgerError
from ledger.evidence import check_evidence
from ledger.genesis import Genesis
from ledger.membership import Membership
from ledger.store import Store
from ledger.timefmt import format_time, now, parse_time
from ledger.tx import Transaction, cache_verified_signatures
from ledger.validate import check_txs, select_txs
from ledger.verify import Tip
from traceability.validity import TraceRules, trace_rules

from . import checkpoints
from .config import NodeConfig
from .consensus import messages
from .consensus.actions import (
    Action,
    Broadcast,
    Commit,
    PersistSignState,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
)
from .consensus.signstate import SignState
from .consensus.state_machine import ConsensusState
from .consensus.step import Step
from .metrics import NodeMetrics
from .service import NodeCore, TxStatus
from .signguard import SignGuard, read_floor
from .signstore import SignStore
from .transport import PeerNetwork, TlsFiles

log = logging.getLogger("parktrace.node")

STATUS_EVERY = 1.0
GOSSIP_EVERY = 0.02
SYNC_BATCH_BLOCKS = 50
SYNC_BATCH_TXS = 5000
#: Seconds between attempts to write a sign state that could not be written.
SIGNSTATE_RETRY_EVERY = 1.0


@dataclass(frozen=True)
class Validated:
    """What checking a candidate block produced, kept so committing it does not redo it."""

    log_nodes: list[tuple[int, int, bytes]]
    membership: Membership
    rules: TraceRules


class Node(NodeCore):
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        genesis = Genesis.load(config.genesis_path)
        entry = next((v for v, _ in genesis.validators if v.id == config.id), None)
        if entry is None:
            raise LedgerError(f"{config.id!r} is not a validator of chain {genesis.chain_id}")
        self.org = entry.org
        key_path = config.key_path(entry.org)
        self.key = PrivateKey.load(key_path, config.key_passphrase)
        if self.key.public_key != entry.public_key:
            raise LedgerError(f"{key_path} is not the key genesis names for {config.id}")
        # Genesis names the CA, so the node needs no other file of the consortium's.
        self.tls = TlsFiles(
            config.certificate_path(entry.org),
            key_path,
            None,
            config.key_passphrase,
            ca_pem=genesis.ca_certificate,
        )
        store = Store(config.db)
        store.bind_chain(genesis.chain_id, genesis.hash, genesis.to_json())
        self.checkpoint_path = config.data_dir / checkpoints.FILE_NAME
        restored = checkpoints.restore(store, genesis, self.key, self.checkpoint_path, trace_rules)
        tip = restored.tip
        super().__init__(
            genesis, store, tip.membership, rules=tip.rules, intake_floor=config.blocks.max_txs
        )
        #: The checkpoint this start went on from: the store is checked again while it runs.
        self.restored_from = restored.checkpoint
        self.checkpoint: Checkpoint | None = restored.checkpoint
        self._checkpoint_due = checkpoints.Schedule(tip.state.height)
        self._checkpointing: asyncio.Task[None] | None = None
        self._checkpoint_lock = threading.Lock()
        #: Why the store was found changed below the checkpoint (the node then stops).
        self.refused: str | None = None
        #: That check (`checkpoints.check_store_elsewhere`): "running", then "unchanged".
        self.prefix_check: str | None = "running" if restored.checkpoint else None
        # Verify each transaction's signature once: on admission, not again in proposals.
        cache_verified_signatures(2 * self.mempool.capacity)
        self.state: ChainState = tip.state
        self.last_commit: CommitCertificate | None = tip.last_commit
        self.committed_evidence: set[str] = set(tip.evidence_keys)
        self.pending_evidence: dict[str, dict[str, Any]] = {}
        self.signstore = SignStore(config.data_dir / "signstate.json")
        sign_state = self.signstore.load()
        signing_from, self.guard = self._signing_start(sign_state)
        self.consensus = ConsensusState(
            tip.state,
            validator_id=config.id,
            key=self.key,
            valid=self._valid,
            timely=self._timely,
            config=config.consensus,
            evidence_committed=self.committed_evidence.__contains__,
            sign_state=sign_state,
            signing_from=signing_from,
        )
        self.metrics = NodeMetrics()
        self.metrics.height.set(self.state.height)
        self.network = PeerNetwork(
            config.id, self.tls, config.peers, self._identify, self._on_peer_message
        )
        self.peer_heights: dict[str, int] = {}
        self.last_progress = wallclock.monotonic()
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._validated: dict[str, Validated] = {}
        self._gossip_out: list[str] = []
        self._work = asyncio.Event()
        self._entering: asyncio.Task[None] | None = None
        self._proposing: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._syncing_from: str | None = None
        self.ready = asyncio.Event()
        #: Why the driver stopped on an unexpected error (None while it runs).
        self.halted: str | None = None
        #: Why the last sign state could not be written (None once it is on disk): until
        #: it is, nothing this validator signs leaves the node.
        self.signstate_error: str | None = None
        self._signstate_retry: asyncio.Task[None] | None = None

    def _signing_start(self, sign_state: SignState | None) -> tuple[int | None, SignGuard | None]:
        """The lowest height this validator may sign at (None: not known yet), and the
        guard that will find it when the sign state is gone (nodes/signguard.py)."""
        height = self.state.height
        floor = read_floor(self.config.data_dir)
        if sign_state is not None:
            if sign_state.height > height + 1:
                log.warning(
                    "sign state is of height %d but the store ends at %d (blocks lost): "
                    "catching up from peers, signing again from height %d",
                    sign_state.height,
                    height,
                    sign_state.height,
                )
            return (1 if floor is None else floor + 1), None
        if floor is not None and floor > height:
            log.warning(
                "no sign state; the operator recorded signing up to height %d: "
                "signing from height %d",
                floor,
                floor + 1,
            )
            return floor + 1, None
        count = len(self.state.validators.validators)
        peers_needed = count - 1 - (count - 1) // 3  # with this node, a quorum
        log.warning(
            "no sign state at %s (store at height %d): following the chain without signing "
            "until %d peers have reported their heights and the chain has passed any height "
            "this validator may have signed at",
            self.signstore.path,
            height,
            peers_needed,
        )
        return None, SignGuard(self.config.id, height, peers_needed)

    def _check_guard(self) -> None:
        """Release the sign guard once it knows a height above anything signed before."""
        if self.guard is None:
            return
        horizon = self.guard.horizon()
        if horizon is None:
            return
        self.guard = None
        log.warning(
            "sign guard: this validator may have signed up to height %d; signing from %d",
            horizon,
            horizon + 1,
        )
        self._put("allow_signing", horizon + 1)

    # -- identity of peers -------------------------------------------------------------------
    def _identify(self, public_key: bytes) -> str | None:
        for validator in self.state.validators.validators:
            if validator.public_key.key == public_key:
                return validator.id
        return None

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled."""
        host, port = self.config.listen
        await self.network.start(host, port)
        self._tasks = [
            asyncio.create_task(self._announce(), name="announce"),
            asyncio.create_task(self._gossip(), name="gossip"),
        ]
        if self.restored_from is not None:
            self._tasks.append(asyncio.create_task(self._check_prefix(), name="prefix"))
        if self.checkpoint_height() < self.state.height:  # verified just now: keep that
            self._write_checkpoint_soon()
        log.info("node %s started at height %d", self.config.id, self.state.height)
        self._check_guard()  # a lone validator needs no peer's word
        self.ready.set()
        try:
            await self._execute(self.consensus.start())
            while True:
                kind, payload = await self._inbox.get()
                if kind == "refuse":
                    raise checkpoints.StoreChanged(payload)
                await self._handle(kind, payload)
        except checkpoints.StoreChanged as exc:
            self.refused = exc.message
            log.critical("node %s stops: %s", self.config.id, self.refused)
            raise
        except Exception as exc:
            # A bug (the block rule admitted what later code cannot handle, a store that
            # fails): say so loudly and stop, rather than die mid-action. What was decided
            # is in the store or, if storing failed, still with the peers, who serve it to
            # this node when it restarts.
            self.halted = f"{type(exc).__name__}: {exc}"
            log.critical("node %s stops: %s", self.config.id, self.halted, exc_info=True)
        finally:
            await self.stop()

    async def stop(self) -> None:
        pending = [*self._tasks, self._entering, self._proposing, self._signstate_retry]
        # Written here, synchronously: stop may run while the task is being cancelled.
        if self.refused is None and self.checkpoint_height() < self.state.height:
            self._write_checkpoint(self._tip())
        for task in pending:
            if task is not None:
                task.cancel()
        for task in pending:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks = []
        await self.network.stop()
        self.store.close()

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_height(self) -> int:
        return self.checkpoint.height if self.checkpoint is not None else 0

    def _tip(self) -> Tip:
        return Tip(
            self.state,
            self.membership,
            self.last_commit,
            frozenset(self.committed_evidence),
            self.rules,
        )

    def _write_checkpoint(self, tip: Tip) -> None:
        """Write `tip` unless a checkpoint as high is already on disk (from the driver's
        thread or from stop, whichever comes last: never an older state over a newer)."""
        try:
            with self._checkpoint_lock:
                if self.checkpoint_height() >= tip.state.height:
                    return
                self.checkpoint = write_checkpoint(
                    self.checkpoint_path, tip, self.store, self.key, self.genesis.hash
                )
        except OSError as exc:  # a full disk costs the next restart time, nothing else
            log.warning("checkpoint not written: %s", exc)

    def _write_checkpoint_soon(self) -> None:
        """Write a checkpoint of the state now, off the driver (the state is immutable)."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._checkpoint_due.written(self.state.height)
        self._checkpointing = asyncio.create_task(
            asyncio.to_thread(self._write_checkpoint, self._tip()), name="checkpoint"
        )

    async def _check_prefix(self) -> None:
        found = self.restored_from
        assert found is not None
        problem = await asyncio.to_thread(
            checkpoints.check_store_elsewhere, self.config.db, self.config.genesis_path, found
        )
        if problem is not None:
            self._put(
                "refuse",
                f"the store fails verification at height {problem.height}: {problem.what}",
            )
        else:
            self.prefix_check = "unchanged"
            log.info("store verified again in full below the checkpoint at %d", found.height)

    # -- the driver ------------------------------------------------------------------------------
    async def _handle(self, kind: str, payload: Any) -> None:
        if kind == "message":
            await self._execute(self.consensus.on_message(payload))
        elif kind == "timeout":
            await self._execute(self.consensus.on_timeout(payload))
        elif kind == "value":
            await self._execute(self.consensus.on_proposal_value(payload))
        elif kind == "enter":
            if self._waiting_to_enter() and self.consensus.height == self.state.height:
                self._entering = None
                await self._execute(self.consensus.new_height(self.state))
        elif kind == "synced":
            await self._apply_synced(*payload)
        elif kind == "allow_signing":
            await self._execute(self.consensus.allow_signing_from(payload))
        elif kind == "retry_signstate":
            await self._retry_save()

    def _waiting_to_enter(self) -> bool:
        """The machine decided its height and waits for the host to start the next."""
        return self.consensus.step is Step.COMMIT

    async def _execute(self, actions: list[Action]) -> None:
        loop = asyncio.get_running_loop()
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, PersistSignState):
                await self._save_sign_state(action.state)
            elif isinstance(action, Broadcast):
                self._broadcast([action.message])
            elif isinstance(action, ScheduleTimeout):
                loop.call_later(action.delay, self._put, "timeout", action.timeout)
                if action.step.label == "propose":
                    self.metrics.rounds.inc()
            elif isinstance(action, RequestProposal):
                self._start_proposal(action)
            elif isinstance(action, RecordEvidence):
                record = action.record
                key = check_evidence(
                    record,
                    self.state.validators,
                    chain_id=self.state.chain_id,
                    max_height=self.state.height + 1,
                ).key
                if key not in self.committed_evidence and key not in self.pending_evidence:
                    self.pending_evidence[key] = record
                    # The next proposer may be anyone: every validator must hold it.
                    self.network.broadcast(
                        {"kind": "consensus", "msg": messages.encode(messages.Evidence(record))}
                    )
            elif isinstance(action, Commit):
                await self._commit(action.block, action.certificate)
                self._schedule_enter()

    def _put(self, kind: str, payload: Any) -> None:
        self._inbox.put_nowait((kind, payload))

    # -- the sign state ----------------------------------------------------------------------
    async def _save_sign_state(self, state: SignState) -> bool:
        """Write the sign state; True once it is on disk. A write that fails (a full or
        read-only disk, no file descriptor left) stops this validator voting, not the
        node: it keeps following the chain, and retries until a write succeeds."""
        try:
            await asyncio.to_thread(self.signstore.save, state)
        except OSError as exc:
            if self.signstate_error is None:
                log.error(
                    "cannot write the sign state (%s): not voting until it is written; "
                    "retrying every %g s",
                    exc,
                    SIGNSTATE_RETRY_EVERY,
                )
            self.signstate_error = f"{type(exc).__name__}: {exc}"
            if self._signstate_retry is None or self._signstate_retry.done():
                self._signstate_retry = asyncio.create_task(self._retry_sign_state())
            return False
        if self.signstate_error is not None:
            log.warning("sign state written again: voting again")
            self.signstate_error = None
        return True

    async def _retry_save(self) -> None:
        if self.signstate_error is None:
            return
        if await self._save_sign_state(self.consensus.sign_state()):
            self._broadcast(self.consensus.gossip())  # what was held back meanwhile

    async def _retry_sign_state(self) -> None:
        while self.signstate_error is not None:
            await asyncio.sleep(SIGNSTATE_RETRY_EVERY)
            self._put("retry_signstate", None)

    def _signed_here(self, message: Any) -> bool:
        signer = getattr(message, "validator", None) or getattr(message, "proposer", None)
        return isinstance(message, messages.Proposal | Vote) and signer == self.config.id

    def _broadcast(self, outgoing: list[Any]) -> None:
        """Send consensus messages; while the sign state is not on disk, none this
        validator signed (the state that names it may never be written)."""
        for message in outgoing:
            if self.signstate_error is not None and self._signed_here(message):
                continue
            self.network.broadcast({"kind": "consensus", "msg": messages.encode(message)})

    # -- blocks --------------------------------------------------------------------------------
    def _valid(self, block: Block) -> str | None:
        """The host's validity predicate: chain rules and every transaction's rules."""
        if block.height != self.state.height + 1:
            return f"block is for height {block.height}, the chain is at {self.state.height}"
        try:
            nodes = check_next(self.state, block)
            self.rules.prefetch(self.store, block.height, block.txs)
            rules = self.rules.begin(block.height, block.header.time)
            membership = check_txs(
                block.txs,
                self.membership,
                height=block.height,
                time=block.header.time,
                known=self.store.known_tx_ids,
                rules=rules,
            )
        except LedgerError as exc:
            # An honest proposer never sends this: the operators should hear who did.
            log.warning(
                "block %d proposed by %s is invalid: %s",
                block.height,
                block.header.proposer,
                exc.message,
            )
            return exc.message
        self._validated[block.hash] = Validated(nodes, membership, rules.result())
        return None

    def _timely(self, block: Block) -> str | None:
        """Proposer-based timestamps: prevote a fresh proposal only if its time is not
        further ahead of this node's clock than max_time_ahead. Without it one validator
        with a fast clock stamps its blocks with that clock, every later proposer stamps
        previous + 1 ms, and the chain's time runs ahead of every honest clock."""
        ahead = (parse_time(block.header.time) - parse_time(now())).total_seconds()
        bound = self.config.consensus.max_time_ahead
        if ahead <= bound:
            return None
        reason = (
            f"block {block.height} of {block.header.proposer} is stamped {ahead:.1f} s ahead "
            f"of this node's clock (at most {bound:g} s): one of the two clocks is wrong"
        )
        log.warning("not prevoting: %s", reason)
        return reason

    def _block_time(self) -> str:
        floor = format_time(parse_time(self.state.head_time) + timedelta(milliseconds=1))
        return max(now(), floor)

    def _start_proposal(self, request: RequestProposal) -> None:
        if self._proposing is not None:
            self._proposing.cancel()
        self._proposing = asyncio.create_task(self._propose(request))

    async def _propose(self, request: RequestProposal) -> None:
        """Wait (at most batch_ms) for a fuller block, then hand the machine a block.
        (Counting batch_ms from the oldest pending transaction instead was measured: it
        made blocks smaller and heights more frequent, and per-height costs then
        saturated the cluster earlier, at 871 tx/s instead of 1,012.)"""
        deadline = wallclock.monotonic() + self.config.blocks.batch_ms / 1000
        while len(self.mempool) < self.config.blocks.max_txs and wallclock.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self.consensus.height != request.height or self.consensus.round != request.round:
            return
        time = self._block_time()
        candidates = self.mempool.peek(self.config.blocks.max_txs)
        self.rules.prefetch(self.store, request.height, candidates)
        chosen, rejected, _ = select_txs(
            candidates,
            self.membership,
            height=request.height,
            time=time,
            known=self.store.known_tx_ids,
            rules=self.rules.begin(request.height, time),
        )
        self.rejected(rejected)
        evidence = list(self.pending_evidence.values())[: self.config.consensus.max_block_evidence]
        block = build_block(
            self.state,
            txs=chosen,
            time=time,
            proposer=self.config.id,
            last_commit=self.last_commit,
            evidence=evidence,
        )
        self._put("value", block)

    async def _commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Make `block` durable, then move the chain state on. Clients learn of it after."""
        validated = self._validated.get(block.hash)
        if validated is None:  # decided through a certificate we had not judged yet
            problem = self._valid(block)
            if problem is not None:
                raise LedgerError(
                    f"a quorum committed block {block.height} we find invalid: {problem}"
                )
            validated = self._validated[block.hash]
        await asyncio.to_thread(
            self.store.save_block,
            block,
            certificate,
            validated.log_nodes,
            validated.rules.block_tallies,
        )
        self._advance(block, certificate, validated.membership, validated.rules)

    def _advance(
        self,
        block: Block,
        certificate: CommitCertificate,
        membership: Membership,
        rules: TraceRules,
    ) -> None:
        previous_time = self.state.head_time
        self.state = advance(self.state, block, membership.validators)
        self.last_commit = certificate
        self._validated.clear()
        if self.guard is not None:
            self.guard.certificate(block.last_commit)
            self.guard.certificate(certificate)
        for record in block.evidence:
            key = check_evidence(
                record,
                self.state.last_validators or self.state.validators,
                chain_id=self.state.chain_id,
                max_height=block.height,
            ).key
            self.committed_evidence.add(key)
            self.pending_evidence.pop(key, None)
        self.committed(block, membership, rules)
        if self._checkpoint_due.due(block.height, len(block.txs)):
            self._write_checkpoint_soon()
        self.last_progress = wallclock.monotonic()
        self.metrics.height.set(block.height)
        self.metrics.mempool.set(len(self.mempool))
        self.metrics.committed_txs.inc(len(block.txs))
        self.metrics.last_block_time.set(parse_time(block.header.time).timestamp())
        interval = (parse_time(block.header.time) - parse_time(previous_time)).total_seconds()
        if block.height > 1:
            self.metrics.block_interval.observe(max(0.0, interval))
        log.info(
            "committed block %d with %d txs (%s…)", block.height, len(block.txs), block.hash[:12]
        )

    def _schedule_enter(self) -> None:
        """Start the next height once there is something to do, or after idle_ms."""
        if self._entering is not None:
            self._entering.cancel()
        self._work.clear()
        self._entering = asyncio.create_task(self._enter_when_ready())

    async def _enter_when_ready(self) -> None:
        if not len(self.mempool) and not self.pending_evidence:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._work.wait(), self.config.blocks.idle_ms / 1000)
        self._put("enter", None)

    # -- catch-up ------------------------------------------------------------------------------
    async def _apply_synced(self, peer: str, items: list[dict[str, Any]]) -> None:
        self._syncing_from = None
        applied = 0
        for item in items:
            try:
                block = Block.from_json(item["block"], self.mempool.by_canonical)
                certificate = CommitCertificate.from_json(item["commit"])
            except (LedgerError, KeyError, TypeError) as exc:
                log.warning("peer %s sent a malformed block: %s", peer, exc)
                return
            if block.height <= self.state.height:
                continue
            problem = self._valid(block)
            if problem is None:
                try:
                    certificate.verify(
                        self.state.validators,
                        chain_id=self.state.chain_id,
                        height=block.height,
                        block_hash=block.hash,
                    )
                except LedgerError as exc:
                    problem = exc.message
            if problem is not None:
                log.warning("peer %s sent block %d that fails: %s", peer, block.height, problem)
                return
            validated = self._validated[block.hash]
            await asyncio.to_thread(
                self.store.save_block,
                block,
                certificate,
                validated.log_nodes,
                validated.rules.block_tallies,
            )
            self._advance(block, certificate, validated.membership, validated.rules)
            self.metrics.synced_blocks.inc()
            applied += 1
        if applied:
            log.info("caught up %d blocks from %s, now at %d", applied, peer, self.state.height)
            if self._entering is not None:
                self._entering.cancel()
                self._entering = None
            await self._execute(self.consensus.new_height(self.state))

    def _serve_blocks(self, peer: str, start: Any, end: Any) -> None:
        if not isinstance(start, int) or not isinstance(end, int) or start < 1 or end < start:
            return
        items: list[dict[str, Any]] = []
        txs = 0
        last = min(end, start + SYNC_BATCH_BLOCKS - 1, self.state.height)
        # The wire form straight from the stored canonical texts: nothing is parsed to be
        # served (the peer checks every block as it would any other).
        previous = self.store.commit(start - 1) if start > 1 else None
        last_commit = previous.to_json() if previous is not None else None
        for raw in self.store.raw_blocks(start, last):
            commit = json.loads(raw.commit)
            block = {
                "header": json.loads(raw.header),
                "txs": [t.envelope for t in raw.txs],
                "evidence": json.loads(raw.evidence),
                "last_commit": last_commit,
            }
            items.append({"block": block, "commit": commit})
            last_commit = commit
            txs += len(raw.txs)
            if txs >= SYNC_BATCH_TXS:
                break
        if items:
            self.network.send(peer, {"kind": "blocks", "items": items})

    def _maybe_sync(self) -> None:
        """Ask the most advanced peer for blocks when it is ahead and we are not moving."""
        if not self.peer_heights or self._syncing_from is not None:
            return
        peer, height = max(self.peer_heights.items(), key=lambda item: item[1])
        behind = height - self.state.height
        stalled = wallclock.monotonic() - self.last_progress > 2 * STATUS_EVERY
        if behind >= 2 or (behind >= 1 and stalled):
            self._syncing_from = peer
            self.network.send(
                peer, {"kind": "get_blocks", "from": self.state.height + 1, "to": height}
            )

    async def _announce(self) -> None:
        while True:
            self.network.broadcast({"kind": "status", "height": self.state.height})
            self.metrics.peers.set(len(self.network.stats.connected))
            self.metrics.mempool.set(len(self.mempool))
            self._syncing_from = None if self._syncing_stale() else self._syncing_from
            self._maybe_sync()
            if wallclock.monotonic() - self.last_progress > 3 * STATUS_EVERY:
                self._broadcast(self.consensus.gossip())  # help peers that lost messages
            await asyncio.sleep(STATUS_EVERY)

    def _syncing_stale(self) -> bool:
        return wallclock.monotonic() - self.last_progress > 5 * STATUS_EVERY

    # -- peers ---------------------------------------------------------------------------------
    def _on_peer_message(self, peer: str, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "consensus":
            try:
                decoded = messages.decode(message.get("msg"), self.mempool.by_canonical)
            except LedgerError as exc:
                log.debug("dropping a malformed consensus message from %s: %s", peer, exc)
                return
            if decoded.height > self.state.height:  # a peer is at the next height already
                self._work.set()
            self._put("message", decoded)
        elif kind == "txs":
            self._admit_gossiped(message.get("txs") or ())
        elif kind == "status":
            height = message.get("height")
            if isinstance(height, int) and height >= 0:
                self.peer_heights[peer] = height
                if self.guard is not None:
                    self.guard.peer_height(peer, height)
                    self._check_guard()
                if height > self.state.height:
                    self._work.set()
        elif kind == "get_blocks":
            self._serve_blocks(peer, message.get("from"), message.get("to"))
        elif kind == "blocks" and isinstance(message.get("items"), list):
            self._put("synced", (peer, message["items"]))

    def _admit_gossiped(self, items: Any) -> None:
        """Admit a peer's batch of transactions (canonical envelope texts); one store lookup
        for the whole batch. Those already pending here are skipped unparsed."""
        txs = []
        for text in items if isinstance(items, list) else ():
            try:
                tx = tx_from_text(text, self.mempool.by_canonical, "gossiped transaction")
            except LedgerError as exc:
                log.debug("gossiped transaction refused: %s", exc)
                continue
            if tx.id not in self.mempool:
                txs.append(tx)
        if not txs:
            return
        committed = self.committed_among(tx.id for tx in txs)
        self.prefetch(txs)
        for tx in txs:
            try:
                NodeCore.submit(self, tx, committed=committed)
            except DuplicateError:
                continue
            except LedgerError as exc:
                log.debug("gossiped transaction refused: %s", exc)
                continue
            self._work.set()

    # -- the API's side -----------------------------------------------------------------------
    def submit(self, tx: Transaction, *, committed: Collection[str] | None = None) -> TxStatus:
        status = super().submit(tx, committed=committed)
        self._gossip_out.append(tx.canonical().decode("utf-8"))
        self._work.set()
        return status

    async def _gossip(self) -> None:
        while True:
            await asyncio.sleep(GOSSIP_EVERY)
            if self._gossip_out:
                batch, self._gossip_out = self._gossip_out[:2000], self._gossip_out[2000:]
                self.network.broadcast({"kind": "txs", "txs": batch})

    def info(self) -> dict[str, Any]:
        """What /healthz and `cluster status` show."""
        return {
            "node": self.config.id,
            "chain_id": self.genesis.chain_id,
            "height": self.state.height,
            "head": self.state.head_hash,
            "last_block_time": self.state.head_time if self.state.height else None,
            "round": self.consensus.round,
            "signing": self.consensus.is_validator and self.signstate_error is None,
            "signstate_error": self.signstate_error,
            "mempool": len(self.mempool),
            "peers": sorted(self.network.stats.connected),
            "peer_heights": dict(sorted(self.peer_heights.items())),
            "checkpoint": self.checkpoint.summary() if self.checkpoint is not None else None,
            "restarted_from": self.restored_from.height if self.restored_from else None,
            "prefix_check": self.prefix_check,
        }
