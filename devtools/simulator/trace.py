"""What happened in a run, event by event: enough to see why an invariant broke, and a
digest that proves a replay of the seed took exactly the same path."""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.block import Vote
from nodes.consensus.messages import Decision, Evidence, Proposal

from .network import Raw


def describe(payload: Any) -> str:
    """A short, deterministic summary of a network payload."""
    if isinstance(payload, Vote):
        value = payload.block_hash[:8] if payload.block_hash else "nil"
        return f"{payload.type} h{payload.height} r{payload.round} {value} by {payload.validator}"
    if isinstance(payload, Proposal):
        return (
            f"proposal h{payload.height} r{payload.round} pol{payload.pol_round} "
            f"{payload.block.hash[:8]} by {payload.proposer}"
        )
    if isinstance(payload, Decision):
        return f"decision h{payload.height} {payload.block.hash[:8]}"
    if isinstance(payload, Evidence):
        vote = payload.record["vote_a"]
        return f"evidence {vote['validator']} h{vote['height']} r{vote['round']} {vote['type']}"
    if isinstance(payload, Raw):
        return "raw " + hashlib.sha256(repr(payload.data).encode()).hexdigest()[:8]
    return type(payload).__name__


class Trace:
    def __init__(self) -> None:
        self.events: list[tuple[float, str, int, str]] = []

    def add(self, time: float, kind: str, node: int, detail: str = "") -> None:
        self.events.append((time, kind, node, detail))

    def lines(self, last: int | None = None) -> list[str]:
        events = self.events if last is None else self.events[-last:]
        return [f"{t:10.4f} n{node} {kind} {detail}".rstrip() for t, kind, node, detail in events]

    def digest(self) -> str:
        h = hashlib.sha256()
        for t, kind, node, detail in self.events:
            h.update(f"{t!r}|{kind}|{node}|{detail}\n".encode())
        return h.hexdigest()
