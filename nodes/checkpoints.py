"""How a node restarts from its verified checkpoint (`ledger.checkpoint`) and when it
writes one.

At start the node verifies only the blocks stored above its checkpoint, in full, and is
ready; the bytes below it are re-hashed in a separate process while the node runs
(`ledger.integrity`), and a difference stops the node with the height that differs, as a
full verification would have. Without a usable checkpoint (the first start, a file from
another version, a store that no longer holds the checkpointed block) the node verifies
its whole store, as it always did, and says why in one line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ledger import checkpoint
from ledger.block import CommitCertificate
from ledger.checkpoint import Checkpoint, CheckpointError
from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.integrity import check_prefix
from ledger.store import RawBlock, Store
from ledger.verify import Problem, RulesFactory, Tip, canonical_json, restore_chain, verify_store
from traceability.validity import trace_rules

log = logging.getLogger("parktrace.node")

FILE_NAME = "checkpoint.bin"
#: A checkpoint is written after this many heights or transactions since the last one,
#: whichever comes first, and when the node stops: what a restart after a crash verifies.
EVERY_HEIGHTS = 100
EVERY_TXS = 10_000


class StoreChanged(LedgerError):
    """A stored block below the checkpoint differs from what the node verified."""

    code = "store_changed"


@dataclass(frozen=True)
class Restored:
    tip: Tip
    #: the checkpoint the node went on from (its prefix still to re-hash), if any
    checkpoint: Checkpoint | None


def restore(
    store: Store, genesis: Genesis, key: PrivateKey, path: Path, rules: RulesFactory
) -> Restored:
    """The chain state to go on from: from the checkpoint in `path` if it can be used,
    else from a verification of the whole store. Raises LedgerError, naming the height,
    if the blocks verified fail."""
    rules(store)  # the domain binds the store to its index, whichever way the node goes on
    try:
        found = checkpoint.read(path, key.public_key, store, genesis.hash)
        held = store.height()
        if held < found.height:
            raise CheckpointError(f"the store holds {held} blocks, the checkpoint {found.height}")
        stored = next(store.raw_blocks(found.height, found.height), None)
        if stored is None or stored.hash.hex() != found.head_hash:
            raise CheckpointError(f"block {found.height} in the store is not the one checkpointed")
        start = _with_stored_commit(found.tip, stored, held > found.height)
    except CheckpointError as exc:
        log.info("checkpoint not used (%s): verifying the whole store", exc.message)
        return Restored(restore_chain(store, genesis, rules=rules), None)
    tip = restore_chain(store, genesis, rules=rules, start=start)
    log.info(
        "restarted from the checkpoint at height %d: verified the %d blocks above it",
        found.height,
        tip.state.height - found.height,
    )
    return Restored(tip, found)


def _with_stored_commit(tip: Tip, stored: RawBlock, above: bool) -> Tip:
    """The checkpoint's state with the certificate of its head block as the store holds
    it. The checkpoint keeps the node's own; once block height+1 is stored, the store
    keeps the one that block names instead, which the verification of height+1 checks.
    With nothing stored above, the stored one must be the checkpoint's own."""
    try:
        commit = CommitCertificate.from_json(canonical_json(stored.commit, "commit certificate"))
    except (LedgerError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"block {stored.height}'s stored certificate is unreadable") from exc
    if not above and (tip.last_commit is None or commit.hash() != tip.last_commit.hash()):
        raise CheckpointError(
            f"block {stored.height}'s stored certificate is not the one checkpointed"
        )
    return replace(tip, last_commit=commit)


def _check_in_child(
    db: str, genesis_path: str, height: int, head_hash: str, node_pid: int
) -> Problem | None:
    os.nice(10)  # the node's own work comes first

    def node_alive(_done: int, _total: int) -> None:
        if os.getppid() != node_pid:  # the node was killed: its check dies with it
            os._exit(0)

    genesis = Genesis.load(Path(genesis_path))
    store = Store(db, migrate=False)
    try:
        problem = check_prefix(store, genesis.hash, height, head_hash, None, progress=node_alive)
        if problem is not None:
            return problem
        return verify_store(store, genesis, rules=trace_rules, progress=node_alive).problem
    finally:
        store.close()


def check_store_elsewhere(db: str, genesis_path: Path, found: Checkpoint) -> Problem | None:
    """The store the node restarted on, checked in a child process at low priority, work
    that must not hold the node's own loop: first the bytes of the checkpointed blocks
    re-hashed (`ledger.integrity.check_prefix`: seconds), then the whole store verified
    as `parktrace verify` does (derived columns and indexes included). The head's
    certificate is not compared: `restore` did, and the node may have stored the next
    block, and with it another certificate for the head, since."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(
            _check_in_child, db, str(genesis_path), found.height, found.head_hash, os.getpid()
        ).result()


class Schedule:
    """When the next checkpoint is due: EVERY_HEIGHTS or EVERY_TXS since the last."""

    def __init__(self, height: int) -> None:
        self.height, self.txs = height, 0

    def due(self, height: int, txs: int) -> bool:
        self.txs += txs
        return height - self.height >= EVERY_HEIGHTS or self.txs >= EVERY_TXS

    def written(self, height: int) -> None:
        self.height, self.txs = height, 0
