"""The verification report of a node: `ledger.verify.verify_store` over the node's own
store, against the genesis the node runs with, plus what the node believes its head is.

A node whose stored bytes were changed after it committed them still runs (it checked
every block before storing it and keeps its state in memory), so its own report is
where the change shows: the first bad height and what is wrong there.

A full replay is CPU-bound for tens of seconds on a large chain. It runs in a worker
process of its own, at low priority, that exits when done: the node's event loop and
its consensus keep their core (no GIL shared with the replay), and the memory the replay
touched goes back to the system. Reports run one at a time per node (two at once would
only be slower). A store only this process can open (SQLite in memory) is verified in
the calling thread instead.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ledger.genesis import Genesis
from ledger.parallel import cores
from ledger.store import Store
from ledger.verify import verify_store
from nodes.service import NodeCore
from traceability.validity import trace_rules

_one_at_a_time = threading.Lock()
#: Added to the worker's nice value: the node's own work comes first.
WORKER_NICENESS = 10


def node_id(node: NodeCore) -> str | None:
    """The validator id of a consortium node (None for the single-process dev node)."""
    config = getattr(node, "config", None)
    return getattr(config, "id", None)


def verify_url(url: str, genesis_doc: dict[str, Any]) -> dict[str, Any]:
    """The verification report of the store at `url` (what the worker process runs)."""
    store = Store(url, migrate=False)
    try:
        genesis = Genesis.from_json(genesis_doc)
        return verify_store(store, genesis, rules=trace_rules, workers=cores()).to_json()
    finally:
        store.close()


def _lower_priority() -> None:
    os.nice(WORKER_NICENESS)


def _shareable(url: str) -> bool:
    """Can another process open this store? Not SQLite in memory."""
    if not url.startswith("sqlite"):
        return True
    path = url.split("://", 1)[1].lstrip("/")
    return bool(path) and path != ":memory:" and "mode=memory" not in url


def _in_worker(url: str, genesis_doc: dict[str, Any]) -> dict[str, Any]:
    # spawn, not fork: the node process runs threads and an event loop.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_lower_priority) as pool:
        return pool.submit(verify_url, url, genesis_doc).result()


def verification_report(node: NodeCore) -> dict[str, Any]:
    """Replay and check the whole stored chain of `node` (blocking; run it in a thread)."""
    url, genesis_doc = node.store.url, node.genesis.to_json()
    with _one_at_a_time:
        if _shareable(url):
            data = _in_worker(url, genesis_doc)
        else:
            data = verify_store(node.store, node.genesis, rules=trace_rules).to_json()
    return finish_report(node, data)


def finish_report(node: NodeCore, data: dict[str, Any]) -> dict[str, Any]:
    """A verifier's report as the node gives it: with the node, its store and height,
    and what was checked."""
    data["node"] = node_id(node)
    data["store"] = node.store.safe_url
    data["node_height"] = node.height
    data["checked"] = CHECKED
    return data


CHECKED = [
    "every stored byte is canonical and agrees with its derived columns",
    "every block header links to the previous one and commits to its transactions",
    "every commit certificate holds a quorum of valid validator signatures",
    "every transaction signature, signer certificate and write-policy permission",
    "the recall rule and every other transaction rule, replayed from genesis",
    "the whole-ledger Merkle log and the product index",
]
