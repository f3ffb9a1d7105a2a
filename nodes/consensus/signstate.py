"""The signing state: what a validator must remember across a crash so that it can never
sign two conflicting votes or proposals, nor forget a lock.

The machine emits it (as `PersistSignState`) before every signature; the host writes it
durably before sending anything that follows. A machine restored from it resumes the same
height, round and step, keeps its lock, and re-sends the votes it already signed instead of
signing new ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.block import Block, Vote
from ledger.errors import SchemaError
from ledger.tx import require_keys

from .messages import Proposal
from .step import Step

FIELDS = (
    "height",
    "round",
    "step",
    "locked_round",
    "locked_value",
    "valid_round",
    "valid_value",
    "votes",
    "proposals",
)


def _int(obj: dict[str, Any], key: str, lo: int) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise SchemaError(f"sign state.{key}: expected an integer >= {lo}")
    return value


def _block(data: Any, blocks: Mapping[str, Block] | None) -> Block | None:
    """A block field: the block itself, or (with `blocks`) its hash, looked up there."""
    if data is None:
        return None
    if blocks is None or isinstance(data, dict):  # a state written with its blocks inline
        return Block.from_json(data)
    if not isinstance(data, str) or data not in blocks:
        raise SchemaError(f"sign state: no stored block {str(data)[:80]!r}")
    return blocks[data]


@dataclass(frozen=True)
class SignState:
    """Everything signed at `height`, and the round state it was signed in."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_value: Block | None
    valid_round: int
    valid_value: Block | None
    votes: tuple[Vote, ...]  # one per (round, type): the only vote this node may send there
    proposals: tuple[Proposal, ...]  # one per round in which this node proposed

    def blocks(self) -> dict[str, Block]:
        """Every block this state refers to, by hash (most often one, referred to thrice)."""
        found = [self.locked_value, self.valid_value, *(p.block for p in self.proposals)]
        return {block.hash: block for block in found if block is not None}

    def to_json(self, *, by_hash: bool = False) -> dict[str, Any]:
        """The state; with `by_hash`, each block is named by its hash (`blocks()` holds
        them), so that a host can store a block once instead of with every vote."""

        def block(value: Block | None) -> Any:
            if value is None:
                return None
            return value.hash if by_hash else value.to_json()

        return {
            "height": self.height,
            "round": self.round,
            "step": self.step.label,
            "locked_round": self.locked_round,
            "locked_value": block(self.locked_value),
            "valid_round": self.valid_round,
            "valid_value": block(self.valid_value),
            "votes": [vote.to_json() for vote in self.votes],
            "proposals": [p.to_json(block_by_hash=by_hash) for p in self.proposals],
        }

    @classmethod
    def from_json(cls, data: Any, blocks: Mapping[str, Block] | None = None) -> SignState:
        """Parse `to_json()`; or, given `blocks`, `to_json(by_hash=True)`."""
        obj = require_keys(data, FIELDS, "sign state")
        if not isinstance(obj["votes"], list) or not isinstance(obj["proposals"], list):
            raise SchemaError("sign state: votes and proposals must be lists")
        try:
            step = Step.from_label(obj["step"])
        except ValueError as exc:
            raise SchemaError(f"sign state.step: {exc}") from exc
        proposals = []
        for item in obj["proposals"]:
            if blocks is None:
                proposals.append(Proposal.from_json(item))
                continue
            if not isinstance(item, dict):
                raise SchemaError("sign state.proposals: expected objects")
            held = _block(item.get("block"), blocks)
            if held is None:
                raise SchemaError("sign state.proposals: a proposal names no block")
            proposals.append(Proposal.from_json({**item, "block": held.to_json()}))
        state = cls(
            _int(obj, "height", 1),
            _int(obj, "round", 0),
            step,
            _int(obj, "locked_round", -1),
            _block(obj["locked_value"], blocks),
            _int(obj, "valid_round", -1),
            _block(obj["valid_value"], blocks),
            tuple(Vote.from_json(v) for v in obj["votes"]),
            tuple(proposals),
        )
        state.check()
        return state

    def check(self) -> None:
        """Internal consistency: a lock has a value, every signature is of this height."""
        if (self.locked_round >= 0) != (self.locked_value is not None):
            raise SchemaError("sign state: locked_round and locked_value disagree")
        if (self.valid_round >= 0) != (self.valid_value is not None):
            raise SchemaError("sign state: valid_round and valid_value disagree")
        seen = set()
        for vote in self.votes:
            if vote.height != self.height or (vote.round, vote.type) in seen:
                raise SchemaError("sign state: votes must be of its height, one per round/type")
            seen.add((vote.round, vote.type))
        rounds = [p.round for p in self.proposals]
        if len(set(rounds)) != len(rounds) or any(p.height != self.height for p in self.proposals):
            raise SchemaError("sign state: proposals must be of its height, one per round")
