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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ledger import checkpoint
from ledger.checkpoint import Checkpoint, CheckpointError
from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.integrity import check_prefix
from ledger.store import Store
from ledger.verify import Problem, RulesFactory, Tip, restore_chain

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
    except CheckpointError as exc:
        log.info("checkpoint not used (%s): verifying the whole store", exc.message)
        return Restored(restore_chain(store, genesis, rules=rules), None)
    tip = restore_chain(store, genesis, rules=rules, start=found.tip)
    log.info(
        "restarted from the checkpoint at height %d: verified the %d blocks above it",
        found.height,
        tip.state.height - found.height,
    )
    return Restored(tip, found)


def _check_prefix_in_child(
    db: str, genesis_hash: str, height: int, head_hash: str, head_commit: str | None
) -> Problem | None:
    store = Store(db, migrate=False)
    try:
        return check_prefix(store, genesis_hash, height, head_hash, head_commit)
    finally:
        store.close()


def check_prefix_elsewhere(db: str, genesis_hash: str, found: Checkpoint) -> Problem | None:
    """`ledger.integrity.check_prefix` of the checkpointed blocks, in a child process: it
    hashes every stored transaction once, work that must not hold the node's own loop."""
    commit = found.tip.last_commit.hash() if found.tip.last_commit else None
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(
            _check_prefix_in_child, db, genesis_hash, found.height, found.head_hash, commit
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
