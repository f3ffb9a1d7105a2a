"""The verification report of a node: `ledger.verify.verify_store` over the node's own
store, against the genesis the node runs with, plus what the node believes its head is.

A node whose stored bytes were changed after it committed them still runs (it checked
every block before storing it and keeps its state in memory), so its own report is
where the change shows: the first bad height and what is wrong there. Reports run one at
a time per process (a full replay is CPU-bound; two at once would only be slower).
"""

from __future__ import annotations

import threading
from typing import Any

from ledger.verify import verify_store
from nodes.service import NodeCore
from traceability.validity import trace_rules

_one_at_a_time = threading.Lock()


def node_id(node: NodeCore) -> str | None:
    """The validator id of a consortium node (None for the single-process dev node)."""
    config = getattr(node, "config", None)
    return getattr(config, "id", None)


def verification_report(node: NodeCore) -> dict[str, Any]:
    """Replay and check the whole stored chain of `node` (blocking; run it in a thread)."""
    with _one_at_a_time:
        report = verify_store(node.store, node.genesis, rules=trace_rules)
    data = report.to_json()
    data["node"] = node_id(node)
    data["store"] = node.store.safe_url
    data["node_height"] = node.height
    data["checked"] = [
        "every stored byte is canonical and agrees with its derived columns",
        "every block header links to the previous one and commits to its transactions",
        "every commit certificate holds a quorum of valid validator signatures",
        "every transaction signature, signer certificate and write-policy permission",
        "the recall rule and every other transaction rule, replayed from genesis",
        "the whole-ledger Merkle log and the product index",
    ]
    return data
