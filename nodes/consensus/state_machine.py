"""Tendermint consensus (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus",
2018, Algorithm 1) as a pure state machine.

The host drives it, like etcd's raft package: it calls `start`, `on_message`, `on_timeout`,
`on_proposal_value` and `new_height`, and each call returns a list of actions. There are no
sockets, clocks, threads, randomness or storage in here; time reaches the machine only as the
timeouts the host hands back and its verdict on whether a proposal is timely.

Rules (line numbers of Algorithm 1), each a method below:
  StartRound (11)                     `_start_round`
  prevote a proposal (22, 28)         `_rule_prevote`      with the lock rule `_may_prevote`
                                      and, on line 22, `timely` (proposer-based timestamps)
  lock and valid value (36)           `_rule_lock`
  precommit nil on nil quorum (44)    `_rule_nil_precommit`
  timeouts on any quorum (34, 47)     `_rule_prevote_timeout`, `_rule_precommit_timeout`
  decide (49)                         `_rule_decide`  (and `Decision` messages, see below)
  skip to a higher round (55)         `_rule_skip`
  OnTimeout* (57, 61, 65)             `on_timeout`
Equal power; the proposer of (height, round) is `ValidatorSet.proposer`. Deviations, all
standard in Tendermint implementations: every node (the proposer too) schedules
timeoutPropose; a `Decision` (block + 2f+1 precommits) decides the current height like rule
49 without the round's proposal, because the certificate alone proves that f+1 honest
validators precommitted the block.

Action contract. The host executes the actions of one call in order, and:
  * PersistSignState: write the state durably BEFORE executing any later action of the
    batch. It precedes every new signature's Broadcast, so a crash can lose a signature
    that was never sent but never send one that was not saved. Restoring a machine from
    the last saved state (the `sign_state` argument) resumes its height, round, step and
    lock, and it re-sends the votes it had signed; it never signs a conflicting one.
  * Broadcast: send to every other validator. The machine has already counted its own copy.
    Re-sending `gossip()` to peers while stalled is the host's job (the paper's gossip).
  * ScheduleTimeout: call `on_timeout(action.timeout)` after `delay` seconds. Stale timeouts
    are ignored, so the host never cancels one.
  * RequestProposal: build a block for that height (mempool, pending evidence, last commit)
    and pass it to `on_proposal_value`; a late answer is ignored.
  * RecordEvidence: keep the record, include it in blocks this node proposes, and gossip
    it (as an `Evidence` message) so the next proposer has it too.
  * Commit: always the last action of its batch. Store the block with its certificate,
    derive the next ChainState, then call `new_height(chain)`. Until then the machine is in
    step COMMIT and only buffers messages of the next height.

Validity of a block is `valid(block) -> reason | None`, a pure predicate from the host (chain
rules, transactions) that must give every honest node the same verdict; the machine adds the
evidence rules on top. `timely(block) -> reason | None` is the host's other predicate: is a
fresh proposal's time close enough to the host's clock (proposer-based timestamps)? It is
not a rule of validity, since honest clocks differ, and it is asked only before prevoting a
proposal without a proof of lock. Every accepted proposal, vote and certificate is
signature-checked; anything malformed, foreign, absurd or unverifiable is dropped and
counted in `dropped`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ledger.block import Block, CommitCertificate, Vote, VoteType
from ledger.chain import ChainState
from ledger.errors import LedgerError
from ledger.evidence import check_evidence

from .actions import (
    Action,
    Broadcast,
    Commit,
    PersistSignState,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
)
from .config import Config
from .evidence import conflict
from .height_log import ANY, HeightLog
from .messages import Decision, Evidence, Message, Proposal, Signer, verify_signature
from .signstate import SignState
from .step import Step

Validity = Callable[[Block], str | None]


class SignStateError(ValueError):
    """The saved signing state cannot belong to this chain state: refusing to start is the
    only safe answer (resuming lower could lead to signing twice at a later height)."""


def _never(_key: str) -> bool:
    return False


class ConsensusState:
    """One validator's view of consensus at the current height."""

    def __init__(
        self,
        chain: ChainState,
        *,
        validator_id: str | None,
        key: Signer | None,
        valid: Validity,
        timely: Validity = lambda _block: None,
        config: Config | None = None,
        evidence_committed: Callable[[str], bool] = _never,
        sign_state: SignState | None = None,
        signing_from: int | None = 1,
    ) -> None:
        self.config = config or Config()
        self.validator_id = validator_id
        self.key = key
        self.host_valid = valid
        self.host_timely = timely
        self.evidence_committed = evidence_committed
        self.dropped: Counter[str] = Counter()
        #: times the algorithm asked to sign a second, different vote and the guard refused.
        self.guard_conflicts = 0
        self._started = False
        self._future: list[Proposal | Vote] = []
        #: The lowest height this validator may sign at; None: not at any height until the
        #: host calls `allow_signing_from` (a lost sign state, see nodes/signguard.py).
        self.signing_from = signing_from
        #: A sign state of a height the chain has not reached yet (the store lost blocks):
        #: restored when the machine gets there, and nothing is signed below it.
        self._ahead: SignState | None = None
        self._resume_from: SignState | None = None
        if sign_state is not None and sign_state.height > chain.height + 1:
            self._ahead = sign_state
            if signing_from is not None:
                self.signing_from = max(signing_from, sign_state.height)
        self._enter(chain)
        if sign_state is not None and sign_state.height == self.height:
            self._restore(sign_state)
            self._resume_from = sign_state

    # -- state --------------------------------------------------------------------------
    def _enter(self, chain: ChainState) -> None:
        """Reset everything per-height (Algorithm 1, line 54) for height chain.height + 1."""
        self.chain = chain
        self.height = chain.height + 1
        self.round = 0
        self.step = Step.PROPOSE
        self.locked_value: Block | None = None
        self.locked_round = -1
        self.valid_value: Block | None = None
        self.valid_round = -1
        self.log = HeightLog(chain.validators, self.config.max_proposals_per_round)
        self._own_votes: dict[tuple[int, VoteType], Vote] = {}
        self._own_proposals: dict[int, Proposal] = {}
        self._fired: dict[tuple[str, int], None] = {}
        self._verdicts: dict[str, str | None] = {}
        self._offences: dict[str, None] = {}
        self._future_count: Counter[str] = Counter()
        self.is_validator = (
            self.validator_id is not None
            and self.key is not None
            and chain.validators.get(self.validator_id) is not None
            and self.signing_from is not None
            and self.height >= self.signing_from
        )
        if self._ahead is not None and self._ahead.height < self.height:
            self._ahead = None  # decided without us: what was signed there is history

    def _restore(self, state: SignState) -> None:
        self.round, self.step = state.round, state.step
        self.locked_round, self.locked_value = state.locked_round, state.locked_value
        self.valid_round, self.valid_value = state.valid_round, state.valid_value
        for vote in state.votes:
            self._own_votes[(vote.round, vote.type)] = vote
            self.log.add_vote(vote)
        for proposal in state.proposals:
            self._own_proposals[proposal.round] = proposal
            self.log.add_proposal(proposal)

    def sign_state(self) -> SignState:
        return SignState(
            self.height,
            self.round,
            self.step,
            self.locked_round,
            self.locked_value,
            self.valid_round,
            self.valid_value,
            tuple(self._own_votes.values()),
            tuple(self._own_proposals.values()),
        )

    # -- inputs -------------------------------------------------------------------------
    def start(self) -> list[Action]:
        """Begin the first height, or resume the one the saved sign state was at."""
        if self._started:
            raise RuntimeError("consensus already started")
        self._started = True
        return self._resume() + self._process()

    def _resume(self) -> list[Action]:
        if self._resume_from is None:
            return self._start_round(0)
        if self.step is Step.PROPOSE:
            return self._start_round(self.round)
        # re-send what was signed in this round; peers may never have got it
        return [Broadcast(m) for m in self._own_messages() if m.round == self.round]

    def allow_signing_from(self, height: int) -> list[Action]:
        """The host has established that nothing was signed below `height` (sign guard).
        If that includes the current height, signing starts now: in a fresh round when
        this one is past its proposal step (rules of that round fired without our votes;
        moving to a higher round alone is always safe, only timing is local)."""
        if self._ahead is not None:
            height = max(height, self._ahead.height)
        self.signing_from = height if self.signing_from is None else max(self.signing_from, height)
        was = self.is_validator
        self.is_validator = (
            self.validator_id is not None
            and self.key is not None
            and self.chain.validators.get(self.validator_id) is not None
            and self.height >= self.signing_from
        )
        if was or not self.is_validator or not self._started or self.step is Step.COMMIT:
            return []
        if self.step is Step.PROPOSE and not self._own_messages():
            return self._start_round(self.round) + self._process()
        return self._start_round(self.round + 1) + self._process()

    def on_message(self, message: Message) -> list[Action]:
        self._require_started()
        if isinstance(message, Vote):
            actions = self._accept_vote(message)
        elif isinstance(message, Proposal):
            actions = self._accept_proposal(message)
        elif isinstance(message, Decision):
            actions = self._accept_decision(message)
        elif isinstance(message, Evidence):
            actions = self._accept_evidence(message)
        else:
            self.dropped["unknown_message"] += 1
            return []
        return actions + self._process()

    def on_timeout(self, timeout: Timeout) -> list[Action]:
        """OnTimeoutPropose / OnTimeoutPrevote / OnTimeoutPrecommit (lines 57-67)."""
        self._require_started()
        if (timeout.height, timeout.round) != (self.height, self.round):
            return []
        if timeout.step is Step.PROPOSE and self.step is Step.PROPOSE:
            actions = self._vote_and_step("prevote", None)
        elif timeout.step is Step.PREVOTE and self.step is Step.PREVOTE:
            actions = self._vote_and_step("precommit", None)
        elif timeout.step is Step.PRECOMMIT and self.step is not Step.COMMIT:
            actions = self._start_round(self.round + 1)
        else:
            return []
        return actions + self._process()

    def on_proposal_value(self, block: Block) -> list[Action]:
        """The host's answer to RequestProposal: sign and send it if still our turn."""
        self._require_started()
        if (
            self.step is not Step.PROPOSE
            or not self._is_proposer(self.round)
            or self.round in self._own_proposals
            or block.height != self.height
        ):
            self.dropped["stale_value"] += 1
            return []
        try:
            block.check_body()
        except LedgerError:
            self.dropped["bad_value"] += 1
            return []
        return self._propose(block, -1) + self._process()

    def new_height(self, chain: ChainState) -> list[Action]:
        """Move to chain.height + 1 once the host has stored the decided block."""
        self._require_started()
        if chain.height < self.height:
            raise ValueError(f"height {self.height} is not in the chain handed over")
        buffered = [m for m in self._future if m.height == chain.height + 1]
        self._future = []
        self._enter(chain)
        if self._ahead is not None and self._ahead.height == self.height:
            self._restore(self._ahead)
            self._resume_from, self._ahead = self._ahead, None
            return self._resume() + self._process()
        actions = self._start_round(0)
        for message in buffered:
            if self.step is Step.COMMIT:
                break
            actions += self.on_message(message)
        return actions + self._process()

    def gossip(self) -> list[Message]:
        """What a stalled node re-sends so peers that lost messages can catch up: its own
        proposals and votes of this height, and the proof of lock of its valid value."""
        if not self._started or self.step is Step.COMMIT:
            return []
        messages: list[Message] = list(self._own_messages())
        if self.valid_value is not None:
            block_hash = self.valid_value.hash
            proposal = self.log.proposal(self.valid_round, block_hash)
            if proposal is not None and proposal.proposer != self.validator_id:
                messages.append(proposal)
            messages += [
                vote
                for vote in self.log.votes_for(self.valid_round, "prevote", block_hash)
                if vote.validator != self.validator_id
            ]
        return messages

    # -- acceptance: verify before anything is stored --------------------------------------
    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("call start() first")

    def _drop(self, reason: str) -> list[Action]:
        self.dropped[reason] += 1
        return []

    def _admit_height(self, message: Proposal | Vote, sender: str) -> bool:
        """True for this height; buffers the next one (at most `max_future_per_sender` per
        known validator, verified once we get there); drops others."""
        if message.height == self.height and self.step is not Step.COMMIT:
            return True
        if message.height == self.height + 1:
            if self._future_count[sender] < self.config.max_future_per_sender:
                self._future_count[sender] += 1
                self._future.append(message)
            else:
                self.dropped["future_full"] += 1
        else:
            self.dropped["old_height" if message.height <= self.height else "far_height"] += 1
        return False

    def _verified(self, message: Proposal | Vote) -> bool:
        return verify_signature(message, self.chain.validators)

    def _accept_vote(self, vote: Vote) -> list[Action]:
        if vote.chain_id != self.chain.chain_id:
            return self._drop("wrong_chain")
        if self.chain.validators.get(vote.validator) is None:  # before buffering: bounds it
            return self._drop("unknown_validator")
        if not self._admit_height(vote, vote.validator):
            return []
        if vote.round > self.round + self.config.max_round_ahead:
            return self._drop("absurd_round")
        held = self.log.votes_of(vote.validator, vote.round, vote.type)
        if vote.block_hash in held:
            return self._drop("duplicate")
        if not held and not self.log.admits(vote.validator, vote.round, self.round):
            return self._drop("round_slot_taken")
        if not self._verified(vote):
            return self._drop("bad_signature")
        actions: list[Action] = []
        if held:  # equivocation: record it, and count the vote only if its value may matter
            evidence = conflict(next(iter(held.values())), vote)
            assert evidence is not None
            if evidence.key not in self._offences:
                self._offences[evidence.key] = None
                actions.append(RecordEvidence(evidence.to_json()))
            if not self.log.knows(vote.block_hash):
                self.dropped["equivocation_unknown_value"] += 1
                return actions
        self.log.add_vote(vote)
        return actions

    def _accept_proposal(self, proposal: Proposal) -> list[Action]:
        if proposal.chain_id != self.chain.chain_id:
            return self._drop("wrong_chain")
        if self.chain.validators.get(proposal.proposer) is None:
            return self._drop("unknown_validator")
        if not self._admit_height(proposal, proposal.proposer):
            return []
        round_ = proposal.round
        if round_ > self.round + self.config.max_round_ahead:
            return self._drop("absurd_round")
        if proposal.proposer != self.chain.validators.proposer(self.height, round_).id:
            return self._drop("not_proposer")
        if not -1 <= proposal.pol_round < round_:
            return self._drop("bad_pol_round")
        header = proposal.block.header
        if header.height != self.height or header.chain_id != self.chain.chain_id:
            return self._drop("wrong_block_height")
        if self.log.has_proposal(round_, proposal.block.hash):
            return self._drop("duplicate")
        if self.log.round_full(round_):
            return self._drop("too_many_proposals")
        if not self.log.admits(proposal.proposer, round_, self.round):
            return self._drop("round_slot_taken")
        if not self._verified(proposal):
            return self._drop("bad_signature")
        try:  # the signature covers the header hash; the header must cover this body
            proposal.block.check_body()
        except LedgerError:
            return self._drop("bad_block_body")
        self.log.add_proposal(proposal)
        return []

    def _accept_decision(self, decision: Decision) -> list[Action]:
        if decision.height != self.height or self.step is Step.COMMIT:
            return self._drop("decision_not_current")
        block, certificate = decision.block, decision.certificate
        try:
            if block.header.chain_id != self.chain.chain_id:
                return self._drop("wrong_chain")
            block.check_body()
            certificate.verify(
                self.chain.validators,
                chain_id=self.chain.chain_id,
                height=self.height,
                block_hash=block.hash,
            )
        except LedgerError:
            return self._drop("bad_decision")
        if self._valid(block) is not None:
            return self._drop("invalid_decision")
        return self._decide(block, certificate)

    def _accept_evidence(self, message: Evidence) -> list[Action]:
        """Gossiped evidence: keep it if it proves an offence not yet recorded or committed."""
        try:
            evidence = check_evidence(
                message.record,
                self.chain.validators,
                chain_id=self.chain.chain_id,
                max_height=self.height,
            )
        except LedgerError:
            return self._drop("bad_evidence")
        if evidence.key in self._offences or self.evidence_committed(evidence.key):
            return self._drop("known_evidence")
        self._offences[evidence.key] = None
        return [RecordEvidence(evidence.to_json())]

    # -- validity -------------------------------------------------------------------------
    def _valid(self, block: Block) -> str | None:
        """Why `block` is invalid at this height, or None. Cached by hash: every stored block
        passed check_body, so one hash is one content."""
        block_hash = block.hash
        if block_hash not in self._verdicts:
            self._verdicts[block_hash] = self._block_problem(block)
        return self._verdicts[block_hash]

    def _block_problem(self, block: Block) -> str | None:
        if block.height != self.height:
            return f"block is for height {block.height}, not {self.height}"
        if len(block.evidence) > self.config.max_block_evidence:
            return "too much evidence in one block"
        seen: dict[str, None] = {}
        for record in block.evidence:
            try:
                evidence = check_evidence(
                    record,
                    self.chain.validators,
                    chain_id=self.chain.chain_id,
                    max_height=self.height,
                )
            except LedgerError as exc:
                return f"invalid evidence: {exc}"
            if evidence.key in seen:
                return f"evidence {evidence.key} appears twice"
            if self.evidence_committed(evidence.key):
                return f"evidence {evidence.key} is already committed"
            seen[evidence.key] = None
        return self.host_valid(block)

    # -- signing --------------------------------------------------------------------------
    def _is_proposer(self, round_: int) -> bool:
        return (
            self.is_validator
            and self.chain.validators.proposer(self.height, round_).id == self.validator_id
        )

    def _own_messages(self) -> list[Proposal | Vote]:
        return [*self._own_proposals.values(), *self._own_votes.values()]

    def _propose(self, block: Block, pol_round: int) -> list[Action]:
        assert self.key is not None and self.validator_id is not None
        proposal = Proposal(
            self.chain.chain_id, self.height, self.round, pol_round, block, self.validator_id
        ).signed(self.key)
        self._own_proposals[self.round] = proposal
        self.log.add_proposal(proposal)
        return [PersistSignState(self.sign_state()), Broadcast(proposal)]

    def _vote_and_step(self, type_: VoteType, block_hash: str | None) -> list[Action]:
        """Move to the step after this vote, then sign it (so the saved state is the step
        after the signature). The guard: one vote per (round, type), ever."""
        self.step = Step.PREVOTE if type_ == "prevote" else Step.PRECOMMIT
        if not self.is_validator:
            return []
        assert self.key is not None and self.validator_id is not None
        held = self._own_votes.get((self.round, type_))
        if held is not None:
            if held.block_hash != block_hash:
                self.guard_conflicts += 1
            return [Broadcast(held)]
        vote = Vote(
            self.chain.chain_id, self.height, self.round, type_, block_hash, self.validator_id
        ).signed(self.key)
        self._own_votes[(self.round, type_)] = vote
        self.log.add_vote(vote)
        return [PersistSignState(self.sign_state()), Broadcast(vote)]

    # -- the rules --------------------------------------------------------------------------
    def _start_round(self, round_: int) -> list[Action]:
        """StartRound (line 11)."""
        self.round, self.step = round_, Step.PROPOSE
        actions: list[Action] = [
            ScheduleTimeout(
                self.height, round_, Step.PROPOSE, self.config.timeout(Step.PROPOSE, round_)
            )
        ]
        if self._is_proposer(round_):
            if round_ in self._own_proposals:  # resumed after a crash: the same proposal
                actions.append(Broadcast(self._own_proposals[round_]))
            elif self.valid_value is not None:
                actions += self._propose(self.valid_value, self.valid_round)
            else:
                actions.append(RequestProposal(self.height, round_))
        return actions

    def _process(self) -> list[Action]:
        """Fire enabled rules until none is: each rule changes state, so this terminates."""
        actions: list[Action] = []
        while self.step is not Step.COMMIT:
            for name in self._RULES:
                fired = getattr(self, name)()
                if fired is not None:
                    actions += fired
                    break
            else:
                break
        return actions

    def _rule_decide(self) -> list[Action] | None:
        """Line 49: a proposal of any round r and 2f+1 precommits for it in r."""
        for round_, block_hash in self.log.commit_quorums:
            proposal = self.log.proposal(round_, block_hash)
            if proposal is not None and self._valid(proposal.block) is None:
                votes = self.log.votes_for(round_, "precommit", block_hash)
                return self._decide(proposal.block, CommitCertificate.from_votes(votes))
        return None

    def _decide(self, block: Block, certificate: CommitCertificate) -> list[Action]:
        self.step = Step.COMMIT
        return [Commit(block, certificate)]

    def _rule_skip(self) -> list[Action] | None:
        """Line 55: f+1 validators sent messages of a higher round: one honest is there."""
        higher = [r for r in self.log.skip_rounds if r > self.round]
        return self._start_round(max(higher)) if higher else None

    def _may_prevote(self, block: Block, pol_round: int) -> bool:
        """The lock rule of lines 23 and 29: unlocked, locked on this block, or the proposal
        carries a proof of lock at least as recent as ours."""
        locked = self.locked_value
        return self.locked_round <= pol_round or (locked is not None and locked.hash == block.hash)

    def _rule_prevote(self) -> list[Action] | None:
        """Lines 22 and 28: prevote the round's proposal if valid and the lock allows it."""
        if self.step is not Step.PROPOSE:
            return None
        for proposal in self.log.proposals(self.round):
            block, pol_round = proposal.block, proposal.pol_round
            if (
                pol_round >= 0
                and self.log.count(pol_round, "prevote", block.hash) < self.log.quorum
            ):
                continue  # line 28 needs the proof of lock first
            ok = self._may_prevote(block, pol_round) and self._valid(block) is None
            # Line 22 as proposer-based timestamps amend it: a fresh proposal must also be
            # timely, so that one fast clock cannot carry the chain's time ahead. A value
            # re-proposed with a proof of lock (line 28) was judged timely by 2f+1 already.
            if ok and pol_round == -1:
                ok = self.host_timely(block) is None
            return self._vote_and_step("prevote", block.hash if ok else None)
        return None

    def _rule_prevote_timeout(self) -> list[Action] | None:
        """Line 34: 2f+1 prevotes of any kind start timeoutPrevote, once per round."""
        if (
            self.step is not Step.PREVOTE
            or self.log.count(self.round, "prevote", ANY) < self.log.quorum
        ):
            return None
        return self._once("prevote_timeout", Step.PREVOTE)

    def _rule_lock(self) -> list[Action] | None:
        """Line 36: the round's proposal got 2f+1 prevotes: lock it (if still prevoting) and
        make it the valid value, once per round."""
        if self.step < Step.PREVOTE or ("lock", self.round) in self._fired:
            return None
        for proposal in self.log.proposals(self.round):
            block = proposal.block
            if self.log.count(self.round, "prevote", block.hash) < self.log.quorum:
                continue
            if self._valid(block) is not None:
                continue
            self._fired[("lock", self.round)] = None
            self.valid_value, self.valid_round = block, self.round
            if self.step is not Step.PREVOTE:
                return []
            self.locked_value, self.locked_round = block, self.round
            return self._vote_and_step("precommit", block.hash)
        return None

    def _rule_nil_precommit(self) -> list[Action] | None:
        """Line 44: 2f+1 prevotes for nil."""
        if (
            self.step is not Step.PREVOTE
            or self.log.count(self.round, "prevote", None) < self.log.quorum
        ):
            return None
        return self._vote_and_step("precommit", None)

    def _rule_precommit_timeout(self) -> list[Action] | None:
        """Line 47: 2f+1 precommits of any kind start timeoutPrecommit, once per round."""
        if self.log.count(self.round, "precommit", ANY) < self.log.quorum:
            return None
        return self._once("precommit_timeout", Step.PRECOMMIT)

    def _once(self, name: str, step: Step) -> list[Action] | None:
        if (name, self.round) in self._fired:
            return None
        self._fired[(name, self.round)] = None
        delay = self.config.timeout(step, self.round)
        return [ScheduleTimeout(self.height, self.round, step, delay)]

    #: Line 49 first (deciding beats everything), then the round skip, then this round's.
    _RULES = (
        "_rule_decide",
        "_rule_skip",
        "_rule_prevote",
        "_rule_lock",
        "_rule_nil_precommit",
        "_rule_prevote_timeout",
        "_rule_precommit_timeout",
    )
