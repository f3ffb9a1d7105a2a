"""Evidence of equivocation, from detection to commitment.

The machine detects: when a validator's second, different vote for one (height, round,
type) arrives, `conflict` turns the pair into evidence (ledger.evidence defines the record
and checks it). The host keeps records in an `EvidencePool`: pending ones go into the next
block this node proposes; committed ones are remembered (a block repeating one is invalid)
and can be queried, e.g. by regulators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.block import Block, Vote
from ledger.evidence import DuplicateVote


def conflict(held: Vote, new: Vote) -> DuplicateVote | None:
    """The evidence if `new` conflicts with `held` (same signer and step), else None."""
    same_step = (held.validator, held.height, held.round, held.type, held.chain_id) == (
        new.validator,
        new.height,
        new.round,
        new.type,
        new.chain_id,
    )
    if not same_step or held.block_hash == new.block_hash:
        return None
    return DuplicateVote.of(held, new)


def offence(record: dict[str, Any]) -> str:
    """The offence key of a well-formed record (see ledger.evidence.DuplicateVote.key)."""
    return DuplicateVote.from_json(record).key


@dataclass(frozen=True)
class CommittedEvidence:
    key: str
    validator: str
    offence_height: int
    block_height: int
    record: dict[str, Any]


class EvidencePool:
    """Pending and committed evidence of one node. Deterministic: insertion-ordered."""

    def __init__(self, max_pending: int = 1024) -> None:
        self.max_pending = max_pending
        self._pending: dict[str, dict[str, Any]] = {}
        self._committed: dict[str, CommittedEvidence] = {}

    def add(self, record: dict[str, Any]) -> bool:
        """Keep a (machine-checked) record; False if the offence is known or the pool is full."""
        key = offence(record)
        if key in self._pending or key in self._committed:
            return False
        if len(self._pending) >= self.max_pending:
            return False
        self._pending[key] = record
        return True

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Records for the next block, oldest first."""
        return list(self._pending.values())[:limit]

    def is_committed(self, key: str) -> bool:
        return key in self._committed

    def mark_committed(self, block: Block) -> None:
        for record in block.evidence:
            evidence = DuplicateVote.from_json(record)
            self._pending.pop(evidence.key, None)
            self._committed[evidence.key] = CommittedEvidence(
                evidence.key, evidence.validator, evidence.height, block.height, record
            )

    def query(
        self, *, validator: str | None = None, height: int | None = None
    ) -> list[CommittedEvidence]:
        """Committed evidence, optionally of one validator or one offence height."""
        return [
            item
            for item in self._committed.values()
            if (validator is None or item.validator == validator)
            and (height is None or item.offence_height == height)
        ]
