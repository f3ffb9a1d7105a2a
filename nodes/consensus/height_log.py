"""The message log of one height: accepted proposals and votes, and the counts that the
rules of Algorithm 1 ask about ("2f+1 prevotes for id(v) in round r", "f+1 messages of a
higher round").

Everything here is already verified; the log only stores and counts. Validators have equal
power, so counting distinct validators is counting power. Dicts (not sets) keep every
iteration in insertion order, so runs replay identically in any process.

Like the paper's message log, a validator that equivocates has each of its votes counted
for its own value: a double voter's vote for v must still count towards v's proof of lock,
or honest nodes that first heard its other vote could never accept that proof (a liveness
bug the simulator found). "Any value" counts distinct validators.

Memory is bounded: a validator's first vote per (round, type) is kept whatever its value;
further, conflicting ones only for nil or for a block some stored proposal carries (the
machine enforces this with `knows`). Each round keeps at most `max_proposals` proposals, and
`admits` lets each validator occupy at most one round beyond the next one, so a Byzantine
sender cannot spread messages over millions of rounds.
"""

from __future__ import annotations

from ledger.block import Vote, VoteType
from ledger.validators import ValidatorSet

from .messages import Proposal

#: Key of the per-value count for "any value" (nil is None, so it needs its own key).
ANY = "*"


class HeightLog:
    def __init__(self, validators: ValidatorSet, max_proposals: int) -> None:
        self.quorum = validators.quorum  # 2f+1
        self.skip = validators.max_faulty + 1  # f+1: at least one honest sender
        self.max_proposals = max_proposals
        self._proposals: dict[int, dict[str, Proposal]] = {}
        self._votes: dict[tuple[int, VoteType], dict[str, dict[str | None, Vote]]] = {}
        self._values: dict[str, None] = {}  # hashes of the blocks of stored proposals
        self._counts: dict[tuple[int, VoteType], dict[str | None, int]] = {}
        self._senders: dict[int, dict[str, None]] = {}
        self._max_round: dict[str, int] = {}
        #: (round, block hash) pairs with 2f+1 precommits, in the order they got them.
        self.commit_quorums: dict[tuple[int, str], None] = {}
        #: rounds that f+1 distinct validators have sent messages for.
        self.skip_rounds: dict[int, None] = {}

    # -- admission -----------------------------------------------------------------------
    def admits(self, sender: str, round_: int, current: int) -> bool:
        """Rounds up to current+1 are always stored. Beyond that each sender gets one round:
        enough for f+1 honest senders ahead of us to pull us forward, no more."""
        if round_ <= current + 1:
            return True
        highest = self._max_round.get(sender, -1)
        return highest <= current + 1 or highest == round_

    def _seen(self, sender: str, round_: int) -> None:
        senders = self._senders.setdefault(round_, {})
        if sender not in senders:
            senders[sender] = None
            if len(senders) >= self.skip:
                self.skip_rounds[round_] = None
        if round_ > self._max_round.get(sender, -1):
            self._max_round[sender] = round_

    # -- proposals -----------------------------------------------------------------------
    def add_proposal(self, proposal: Proposal) -> bool:
        """Store a verified proposal; False if it is a duplicate or the round is full."""
        by_hash = self._proposals.setdefault(proposal.round, {})
        block_hash = proposal.block.hash
        if block_hash in by_hash or len(by_hash) >= self.max_proposals:
            return False
        by_hash[block_hash] = proposal
        self._values[block_hash] = None
        self._seen(proposal.proposer, proposal.round)
        return True

    def knows(self, block_hash: str | None) -> bool:
        """nil, or the block of a stored proposal: values worth a second vote's storage."""
        return block_hash is None or block_hash in self._values

    def has_proposal(self, round_: int, block_hash: str) -> bool:
        return block_hash in self._proposals.get(round_, {})

    def proposals(self, round_: int) -> list[Proposal]:
        return list(self._proposals.get(round_, {}).values())

    def proposal(self, round_: int, block_hash: str) -> Proposal | None:
        return self._proposals.get(round_, {}).get(block_hash)

    def round_full(self, round_: int) -> bool:
        return len(self._proposals.get(round_, {})) >= self.max_proposals

    # -- votes ---------------------------------------------------------------------------
    def votes_of(self, validator: str, round_: int, type_: VoteType) -> dict[str | None, Vote]:
        """The validator's votes at (round, type) by value: more than one is equivocation."""
        return self._votes.get((round_, type_), {}).get(validator, {})

    def add_vote(self, vote: Vote) -> None:
        """Store a verified vote for a value the validator has not voted for here."""
        key = (vote.round, vote.type)
        mine = self._votes.setdefault(key, {}).setdefault(vote.validator, {})
        counts = self._counts.setdefault(key, {})
        if not mine:
            counts[ANY] = counts.get(ANY, 0) + 1
        mine[vote.block_hash] = vote
        counts[vote.block_hash] = counts.get(vote.block_hash, 0) + 1
        if (
            vote.type == "precommit"
            and vote.block_hash is not None
            and counts[vote.block_hash] >= self.quorum
        ):
            self.commit_quorums[(vote.round, vote.block_hash)] = None
        self._seen(vote.validator, vote.round)

    def count(self, round_: int, type_: VoteType, block_hash: str | None) -> int:
        """Validators that voted for `block_hash` (None: nil; ANY: whatever value)."""
        return self._counts.get((round_, type_), {}).get(block_hash, 0)

    def votes_for(self, round_: int, type_: VoteType, block_hash: str | None) -> list[Vote]:
        return [
            mine[block_hash]
            for mine in self._votes.get((round_, type_), {}).values()
            if block_hash in mine
        ]
