"""Evidence of misbehaviour: two conflicting signed votes from one validator.

A validator that signs two different votes for the same chain, height, round and vote type
has equivocated; the pair of votes is the proof, and anyone holding only the ledger package
and the validator set can re-check it. The record is JSON so it can sit in a block:

    {"type": "duplicate_vote", "vote_a": <vote>, "vote_b": <vote>}

`vote_a` is the vote whose canonical bytes sort first, so one pair of votes has exactly one
encoding (and one hash). One offence (validator, height, round, type) is punished once, even
if the validator signed three different votes: `DuplicateVote.key` names the offence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import codec
from .block import Vote
from .errors import LedgerError, SignatureError
from .tx import require_keys
from .validators import ValidatorSet

DUPLICATE_VOTE = "duplicate_vote"
RECORD_FIELDS = ("type", "vote_a", "vote_b")


class EvidenceError(LedgerError):
    """An evidence record that does not prove what it claims."""

    code = "bad_evidence"


def _order(a: Vote, b: Vote) -> tuple[Vote, Vote]:
    """Canonical order of a pair: by the canonical bytes of each vote's JSON."""
    if codec.canonical(b.to_json()) < codec.canonical(a.to_json()):
        return b, a
    return a, b


@dataclass(frozen=True)
class DuplicateVote:
    """Two votes of one validator at one (height, round, type) for different blocks."""

    vote_a: Vote
    vote_b: Vote

    @classmethod
    def of(cls, a: Vote, b: Vote) -> DuplicateVote:
        """The evidence for two conflicting votes, in canonical order (not yet checked)."""
        first, second = _order(a, b)
        return cls(first, second)

    @property
    def validator(self) -> str:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def key(self) -> str:
        """Names the offence, so the same equivocation is never committed twice."""
        a = self.vote_a
        return f"{DUPLICATE_VOTE}/{a.validator}/{a.height}/{a.round}/{a.type}"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": DUPLICATE_VOTE,
            "vote_a": self.vote_a.to_json(),
            "vote_b": self.vote_b.to_json(),
        }

    @classmethod
    def from_json(cls, record: Any) -> DuplicateVote:
        """Strict parse: known type, exactly the three fields, two well-formed votes."""
        obj = require_keys(record, RECORD_FIELDS, "evidence")
        if obj["type"] != DUPLICATE_VOTE:
            raise EvidenceError(f"evidence.type: unknown kind {obj['type']!r}")
        return cls(Vote.from_json(obj["vote_a"]), Vote.from_json(obj["vote_b"]))

    def check(self, validators: ValidatorSet, *, chain_id: str | None = None) -> None:
        """Raise EvidenceError unless this proves an equivocation by a member of `validators`."""
        a, b = self.vote_a, self.vote_b
        step = (a.chain_id, a.height, a.round, a.type, a.validator)
        if step != (b.chain_id, b.height, b.round, b.type, b.validator):
            raise EvidenceError("evidence: the votes are not from one validator at one step")
        if a.block_hash == b.block_hash:
            raise EvidenceError("evidence: the votes agree, so they prove nothing")
        if chain_id is not None and a.chain_id != chain_id:
            raise EvidenceError(f"evidence: votes of chain {a.chain_id!r}, not {chain_id!r}")
        if _order(a, b) != (a, b):
            raise EvidenceError("evidence: vote_a and vote_b are not in canonical order")
        try:
            a.verify(validators)
            b.verify(validators)
        except SignatureError as exc:
            raise EvidenceError(f"evidence: {exc.message}") from exc


def duplicate_vote_record(a: Vote, b: Vote) -> dict[str, Any]:
    """The JSON record for two conflicting votes, ordered canonically."""
    return DuplicateVote.of(a, b).to_json()


def check_evidence(
    record: Any,
    validators: ValidatorSet,
    *,
    chain_id: str | None = None,
    max_height: int | None = None,
) -> DuplicateVote:
    """Verify one evidence record against a validator set; return it parsed.

    Pure: needs no chain history. `max_height` rejects evidence about heights that cannot
    have happened yet (a block at height h may hold evidence of heights <= h).
    Raises a LedgerError subclass naming the problem.
    """
    evidence = DuplicateVote.from_json(record)
    if max_height is not None and evidence.height > max_height:
        raise EvidenceError(f"evidence: height {evidence.height} is after {max_height}")
    evidence.check(validators, chain_id=chain_id)
    return evidence
