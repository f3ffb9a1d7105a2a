"""Cross-node comparison: ask every validator for a digest of each block it stores and
report the heights where they differ, and which node is the odd one out.

A block's digest covers everything a node stores for it except the commit certificate
(the head block's certificate is each node's own until the next block fixes it): the
block hash and time columns, the header, evidence and every transaction envelope, byte
for byte. A node whose database was edited therefore shows a different digest at the
edited height even though its stored block hash still looks right.

At each height the largest group of nodes that agree is the reference when it is a strict
majority; the others are named as diverging. Without a majority every group is listed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledger.store import RawBlock, Store

PAGE = 1000
MAX_REPORTED = 100


def block_digest(raw: RawBlock) -> str:
    """SHA-256 over the stored bytes of one block (length-prefixed, so fields cannot shift)."""
    h = hashlib.sha256()
    parts = [raw.hash, raw.time.encode(), raw.header.encode(), raw.evidence.encode()]
    parts += [t.envelope.encode() for t in raw.txs]
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def block_digests(store: Store, start: int, end: int) -> list[dict[str, Any]]:
    """{"height", "hash", "digest"} of each stored block in [start, end]."""
    return [
        {"height": raw.height, "hash": raw.hash.hex(), "digest": block_digest(raw)}
        for raw in store.raw_blocks(start, end)
    ]


class DigestSource(Protocol):
    """One node as the comparison sees it."""

    def height(self) -> int: ...

    def digests(self, start: int, end: int) -> list[dict[str, Any]]: ...


class LocalSource:
    """The node answering the comparison: read from its own store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def height(self) -> int:
        return self.store.height()

    def digests(self, start: int, end: int) -> list[dict[str, Any]]:
        return block_digests(self.store, start, end)


class HttpSource:
    """Another node, asked over its audit API with a regulator's signature."""

    def __init__(self, client: Any) -> None:  # an sdk.audit.AuditClient
        self.client = client

    def height(self) -> int:
        return int(self.client.sdk.chain()["height"])

    def digests(self, start: int, end: int) -> list[dict[str, Any]]:
        return self.client.blocks(start, end)["blocks"]


@dataclass
class Comparison:
    nodes: list[str]
    heights: dict[str, int | None] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    compared_to: int = 0
    divergences: list[dict[str, Any]] = field(default_factory=list)
    diverging_heights: int = 0

    @property
    def ok(self) -> bool:
        return not self.diverging_heights and not self.unreachable

    @property
    def diverging_nodes(self) -> list[str]:
        return sorted({n for d in self.divergences for n in d["diverging"]})

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "nodes": self.nodes,
            "heights": self.heights,
            "unreachable": self.unreachable,
            "compared_up_to": self.compared_to,
            "diverging_heights": self.diverging_heights,
            "diverging_nodes": self.diverging_nodes,
            "first_divergence": self.divergences[0]["height"] if self.divergences else None,
            "divergences": self.divergences,
        }


def _judge(height: int, seen: dict[str, tuple[str, str]]) -> dict[str, Any] | None:
    groups: dict[tuple[str, str], list[str]] = {}
    for node, value in sorted(seen.items()):
        groups.setdefault(value, []).append(node)
    if len(groups) == 1:
        return None
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1]))
    majority = ranked[0][1] if len(ranked[0][1]) * 2 > len(seen) else None
    return {
        "height": height,
        "majority": majority,
        "diverging": sorted(n for n in seen if majority is None or n not in majority),
        "groups": [{"hash": h, "digest": d, "nodes": nodes} for (h, d), nodes in ranked],
    }


def compare(sources: Mapping[str, DigestSource], *, page: int = PAGE) -> Comparison:
    """Compare every height all reachable nodes have; name the nodes that differ."""
    result = Comparison(sorted(sources))
    reachable: dict[str, DigestSource] = {}
    for node_id in result.nodes:
        try:
            result.heights[node_id] = sources[node_id].height()
            reachable[node_id] = sources[node_id]
        except Exception as exc:  # any failure to answer: report it, compare the rest
            result.heights[node_id] = None
            result.unreachable[node_id] = str(getattr(exc, "message", exc))[:300]
    if len(reachable) < 2:
        return result
    top = min(h for h in result.heights.values() if h is not None)
    result.compared_to = top
    for start in range(1, top + 1, page):
        end = min(top, start + page - 1)
        seen: dict[int, dict[str, tuple[str, str]]] = {}
        for node_id, source in reachable.items():
            try:
                rows = source.digests(start, end)
            except Exception as exc:  # a node that stops answering mid-way
                result.unreachable[node_id] = str(getattr(exc, "message", exc))[:300]
                continue
            for row in rows:
                seen.setdefault(row["height"], {})[node_id] = (row["hash"], row["digest"])
        for height in range(start, end + 1):
            verdict = _judge(height, seen.get(height, {}))
            if verdict is not None:
                result.diverging_heights += 1
                if len(result.divergences) < MAX_REPORTED:
                    result.divergences.append(verdict)
    return result
