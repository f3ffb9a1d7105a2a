"""Unit tests of the consensus state machine: one or more tests per rule of Algorithm 1
(Buchman, Kwon, Milosevic 2018), the signing guard across restarts, evidence, message
verification and the strict wire format.

The harness drives validator v0 of a 4-validator set (f = 1, quorum 3) by hand: it builds
signed proposals and votes of the other validators and inspects the actions returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.block import Block, CommitCertificate, Vote
from ledger.chain import ChainState, advance, build_block
from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.evidence import DuplicateVote, EvidenceError, check_evidence, duplicate_vote_record
from ledger.validators import Validator, ValidatorSet
from nodes.consensus import (
    Action,
    Broadcast,
    Commit,
    Config,
    ConsensusState,
    Decision,
    Evidence,
    EvidencePool,
    PersistSignState,
    Proposal,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
    SignState,
    Step,
    Timeout,
    decode,
    encode,
    parse,
)
from nodes.consensus.messages import MAX_ROUND, MessageTooLarge, verify_signature

CHAIN = "test-chain"
GENESIS_TIME = "2026-01-01T00:00:00.000Z"
KEYS = [
    PrivateKey.from_seed(hashlib.sha256(f"consensus-test/{i}".encode()).digest()) for i in range(4)
]
VALIDATORS = ValidatorSet(tuple(Validator(f"v{i}", k.public_key) for i, k in enumerate(KEYS)))
GENESIS = ChainState(CHAIN, "ab" * 32, GENESIS_TIME, VALIDATORS)
CONFIG = Config(
    timeout_propose=3.0,
    timeout_propose_delta=0.5,
    timeout_prevote=1.0,
    timeout_prevote_delta=0.25,
    timeout_precommit=1.5,
    timeout_precommit_delta=0.75,
)
H = 1  # the height the harness runs at


def block(tag: int, chain: ChainState = GENESIS, proposer: str = "v1") -> Block:
    """Distinct valid blocks for height chain.height + 1 (they differ in time)."""
    return build_block(
        chain, txs=[], time=f"2026-01-01T00:00:{tag:02d}.000Z", proposer=proposer, last_commit=None
    )


def proposer_of(round_: int, height: int = H) -> int:
    return int(VALIDATORS.proposer(height, round_).id[1:])


def proposal(b: Block, round_: int, pol_round: int = -1, height: int = H) -> Proposal:
    who = proposer_of(round_, height)
    return Proposal(CHAIN, height, round_, pol_round, b, f"v{who}").signed(KEYS[who])


def vote(i: int, type_: str, round_: int, value: Block | None, height: int = H) -> Vote:
    block_hash = value.hash if value is not None else None
    return Vote(CHAIN, height, round_, type_, block_hash, f"v{i}").signed(KEYS[i])  # type: ignore[arg-type]


class Harness:
    """Validator `me` with a validity predicate that rejects the blocks in `invalid`, and a
    clock that finds the blocks in `untimely` stamped too far ahead of it."""

    def __init__(self, me: int = 0, sign_state: SignState | None = None, chain=GENESIS, **kw: Any):
        self.invalid: set[str] = set()
        self.untimely: set[str] = set()
        self.committed_evidence: set[str] = set()
        self.persisted: SignState | None = sign_state
        self.m = ConsensusState(
            chain,
            validator_id=f"v{me}",
            key=KEYS[me],
            valid=lambda b: "rejected by test" if b.hash in self.invalid else None,
            timely=lambda b: "stamped ahead" if b.hash in self.untimely else None,
            config=CONFIG,
            evidence_committed=self.committed_evidence.__contains__,
            sign_state=sign_state,
            **kw,
        )
        self.me = me

    def _track(self, actions: list[Action]) -> list[Action]:
        """Check the ordering contract on every batch, and keep the last persisted state."""
        self.persisted = check_contract(actions, self.persisted)
        return actions

    def start(self) -> list[Action]:
        return self._track(self.m.start())

    def send(self, *messages: Any) -> list[Action]:
        actions: list[Action] = []
        for message in messages:
            actions += self._track(self.m.on_message(message))
        return actions

    def timeout(self, step: Step, round_: int | None = None) -> list[Action]:
        t = Timeout(self.m.height, self.m.round if round_ is None else round_, step)
        return self._track(self.m.on_timeout(t))

    def restart(self) -> Harness:
        return Harness(self.me, sign_state=self.persisted, chain=self.m.chain)


def _signatures(state: SignState | None) -> set[bytes]:
    if state is None:
        return set()
    return {v.signature for v in state.votes} | {p.signature for p in state.proposals}


def check_contract(actions: list[Action], saved: SignState | None) -> SignState | None:
    """Every vote or proposal broadcast has been persisted before (in this batch or an
    earlier one); Commit comes last. Returns the state persisted last."""
    durable = _signatures(saved)
    for i, action in enumerate(actions):
        if isinstance(action, PersistSignState):
            saved = action.state
            durable |= _signatures(saved)
        elif isinstance(action, Broadcast) and isinstance(action.message, Vote | Proposal):
            assert action.message.signature in durable, "broadcast before persist"
        elif isinstance(action, Commit):
            assert i == len(actions) - 1, "Commit must be the last action of its batch"
    return saved


def broadcasts(actions: list[Action], kind: type = Vote) -> list[Any]:
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def timeouts(actions: list[Action]) -> list[ScheduleTimeout]:
    return [a for a in actions if isinstance(a, ScheduleTimeout)]


def the_vote(actions: list[Action]) -> Vote:
    votes = broadcasts(actions)
    assert len(votes) == 1, actions
    return votes[0]


# -- StartRound (line 11) and timeouts (57-67) ----------------------------------------------


def test_non_proposer_starts_round_zero_with_a_propose_timeout():
    h = Harness(me=0)  # proposer of (1, 0) is v1
    actions = h.start()
    assert (h.m.height, h.m.round, h.m.step) == (1, 0, Step.PROPOSE)
    assert actions == [ScheduleTimeout(1, 0, Step.PROPOSE, 3.0)]


def test_proposer_asks_the_host_for_a_block_then_signs_and_prevotes_it():
    h = Harness(me=1)
    assert RequestProposal(1, 0) in h.start()
    b = block(1)
    actions = h._track(h.m.on_proposal_value(b))
    (sent,) = broadcasts(actions, Proposal)
    assert (sent.round, sent.pol_round, sent.block) == (0, -1, b)
    assert the_vote(actions).block_hash == b.hash
    assert h.m.step == Step.PREVOTE
    # a late second answer is ignored: one proposal per round
    assert h.m.on_proposal_value(block(2)) == []


def test_timeouts_grow_linearly_with_the_round():
    for step, base, delta in (
        (Step.PROPOSE, 3.0, 0.5),
        (Step.PREVOTE, 1.0, 0.25),
        (Step.PRECOMMIT, 1.5, 0.75),
    ):
        assert [CONFIG.timeout(step, r) for r in range(4)] == [base + r * delta for r in range(4)]
    h = Harness(me=0)
    h.start()
    h.timeout(Step.PROPOSE)
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    actions = h.send(vote(3, "precommit", 0, None))
    assert timeouts(actions) == [ScheduleTimeout(1, 0, Step.PRECOMMIT, 1.5)]
    actions = h.timeout(Step.PRECOMMIT, 0)
    assert h.m.round == 1
    assert ScheduleTimeout(1, 1, Step.PROPOSE, 3.5) in actions


def test_timeout_propose_prevotes_nil():
    h = Harness()
    h.start()
    assert the_vote(h.timeout(Step.PROPOSE)).block_hash is None
    assert h.m.step == Step.PREVOTE


def test_stale_timeouts_are_ignored():
    h = Harness()
    h.start()
    h.timeout(Step.PROPOSE)
    assert h.timeout(Step.PROPOSE) == []  # step has moved on
    assert h.m.on_timeout(Timeout(1, 5, Step.PRECOMMIT)) == []  # another round
    assert h.m.on_timeout(Timeout(2, 0, Step.PRECOMMIT)) == []  # another height


# -- prevoting a proposal (lines 22 and 28) -----------------------------------------------


def test_valid_proposal_is_prevoted():
    h = Harness()
    h.start()
    v = block(1)
    assert the_vote(h.send(proposal(v, 0))).block_hash == v.hash


def test_invalid_proposal_gets_a_nil_prevote():
    h = Harness()
    h.start()
    v = block(1)
    h.invalid.add(v.hash)
    assert the_vote(h.send(proposal(v, 0))).block_hash is None


def test_a_fresh_proposal_stamped_ahead_of_the_clock_gets_a_nil_prevote():
    h = Harness()
    h.start()
    v = block(1)
    h.untimely.add(v.hash)
    assert the_vote(h.send(proposal(v, 0))).block_hash is None


def test_timeliness_is_not_asked_of_a_value_with_a_proof_of_lock_nor_of_a_decision():
    """2f+1 prevotes mean honest clocks found it timely; a commit is final either way."""
    h = Harness()
    h.start()
    v = block(1)
    h.untimely.add(v.hash)
    h.timeout(Step.PROPOSE)
    h.send(*(vote(i, "prevote", 0, v) for i in (1, 2, 3)))
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    h.timeout(Step.PRECOMMIT, 0)  # round 1, in which v is proposed again with its proof
    assert the_vote(h.send(proposal(v, 1, pol_round=0))).block_hash == v.hash
    actions = h.send(*(vote(i, "precommit", 1, v) for i in (1, 2, 3)))
    assert isinstance(actions[-1], Commit) and actions[-1].block == v


def test_proposal_with_a_proof_of_lock_waits_for_the_prevotes():
    h = Harness()
    h.start()
    h.timeout(Step.PROPOSE)
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2, 3)))
    h.timeout(Step.PRECOMMIT, 0)  # round 1
    v = block(1)
    assert h.send(proposal(v, 1, pol_round=0)) == []  # no 2f+1 prevotes in round 0 yet
    h.send(vote(1, "prevote", 0, v), vote(2, "prevote", 0, v))
    assert the_vote(h.send(vote(3, "prevote", 0, v))).block_hash == v.hash


# -- locking, valid value, unlocking (lines 36-43 and the lock rule of 23 and 29) ----------


def lock_on(h: Harness, v: Block, round_: int = 0) -> list[Action]:
    h.send(proposal(v, round_))
    return h.send(*(vote(i, "prevote", round_, v) for i in (1, 2, 3)))


def test_polka_locks_and_precommits():
    h = Harness()
    h.start()
    v = block(1)
    actions = lock_on(h, v)
    assert the_vote(actions).type == "precommit" and the_vote(actions).block_hash == v.hash
    assert (h.m.locked_round, h.m.locked_value) == (0, v)
    assert (h.m.valid_round, h.m.valid_value) == (0, v)
    assert h.persisted is not None and h.persisted.locked_value == v  # lock saved with the vote


def test_polka_after_precommitting_nil_sets_the_valid_value_only():
    h = Harness()
    h.start()
    v = block(1)
    h.send(proposal(v, 0))  # prevotes v
    h.send(vote(1, "prevote", 0, None), vote(2, "prevote", 0, v))
    h.timeout(Step.PREVOTE)  # no polka in time: precommit nil
    assert h.m.step == Step.PRECOMMIT
    assert h.send(vote(3, "prevote", 0, v)) == []  # the polka arrives too late to lock on
    assert (h.m.locked_round, h.m.valid_round, h.m.valid_value) == (-1, 0, v)


def test_locked_node_prevotes_nil_for_another_fresh_value():
    h = Harness()
    h.start()
    v, w = block(1), block(2)
    lock_on(h, v)
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    h.timeout(Step.PRECOMMIT, 0)
    assert the_vote(h.send(proposal(w, 1))).block_hash is None


def test_locked_node_prevotes_its_locked_value_again():
    h = Harness()
    h.start()
    v = block(1)
    lock_on(h, v)
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    h.timeout(Step.PRECOMMIT, 0)
    assert the_vote(h.send(proposal(v, 1))).block_hash == v.hash  # pol_round -1, same value


def test_newer_proof_of_lock_unlocks():
    h = Harness()
    h.start()
    v, w = block(1), block(2)
    lock_on(h, v)  # locked in round 0
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    h.timeout(Step.PRECOMMIT, 0)  # round 1: w gets a polka that this node missed
    h.send(*(vote(i, "prevote", 1, w) for i in (1, 2, 3)))
    h.send(*(vote(i, "precommit", 1, None) for i in (1, 2)))
    h.timeout(Step.PROPOSE, 1)
    h.timeout(Step.PRECOMMIT, 1)  # round 2 re-proposes w with its proof of lock from round 1
    assert the_vote(h.send(proposal(w, 2, pol_round=1))).block_hash == w.hash


def test_older_proof_of_lock_does_not_unlock():
    h = Harness()
    h.start()
    v, w = block(1), block(2)
    h.timeout(Step.PROPOSE)
    h.send(*(vote(i, "prevote", 0, w) for i in (1, 2, 3)))  # polka for w in round 0 ...
    h.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    h.timeout(Step.PREVOTE, 0)
    h.timeout(Step.PRECOMMIT, 0)
    lock_on(h, v, round_=1)  # ... but locked on v in round 1
    h.send(*(vote(i, "precommit", 1, None) for i in (1, 2)))
    h.timeout(Step.PRECOMMIT, 1)
    assert the_vote(h.send(proposal(w, 2, pol_round=0))).block_hash is None


def test_proposer_reproposes_its_valid_value_with_its_round():
    h = Harness(me=3)  # proposer of (1, 2)
    h.start()
    v = block(1)
    lock_on_others = [vote(i, "prevote", 0, v) for i in (0, 1, 2)]
    h.send(proposal(v, 0), *lock_on_others)
    h.send(*(vote(i, "precommit", 0, None) for i in (0, 1)))
    h.timeout(Step.PRECOMMIT, 0)
    h.send(*(vote(i, "precommit", 1, None) for i in (0, 1, 2)))
    h.timeout(Step.PROPOSE, 1)
    actions = h.timeout(Step.PRECOMMIT, 1)  # round 2: our turn
    assert not any(isinstance(a, RequestProposal) for a in actions)
    (sent,) = broadcasts(actions, Proposal)
    assert (sent.round, sent.pol_round, sent.block) == (2, 0, v)


# -- nil precommit (44), decide (49) ---------------------------------------------------------


def test_nil_polka_precommits_nil():
    h = Harness()
    h.start()
    h.timeout(Step.PROPOSE)
    h.send(vote(1, "prevote", 0, None))
    actions = h.send(vote(2, "prevote", 0, None))
    assert the_vote(actions).type == "precommit" and the_vote(actions).block_hash is None


def test_prevote_timeout_scheduled_once_on_any_quorum():
    h = Harness()
    h.start()
    v = block(1)
    h.send(proposal(v, 0))
    h.send(vote(1, "prevote", 0, None))
    actions = h.send(vote(2, "prevote", 0, v))  # 3 prevotes of mixed values
    assert timeouts(actions) == [ScheduleTimeout(1, 0, Step.PREVOTE, 1.0)]
    assert timeouts(h.send(vote(3, "prevote", 0, None))) == []  # once per round


def test_decides_with_a_proposal_and_a_precommit_quorum():
    h = Harness()
    h.start()
    v = block(1)
    lock_on(h, v)
    h.send(vote(1, "precommit", 0, v))
    actions = h.send(vote(2, "precommit", 0, v))
    commit = actions[-1]
    assert isinstance(commit, Commit) and commit.block == v
    commit.certificate.verify(VALIDATORS, chain_id=CHAIN, height=1, block_hash=v.hash)
    assert h.m.step == Step.COMMIT
    assert h.send(vote(3, "precommit", 0, v)) == []  # decided: no more rules fire


def test_decides_for_an_earlier_round():
    h = Harness()
    h.start()
    h.send(vote(1, "prevote", 3, None), vote(2, "prevote", 3, None))
    assert h.m.round == 3
    v = block(1)
    h.send(proposal(v, 0))
    actions = h.send(*(vote(i, "precommit", 0, v) for i in (1, 2, 3)))
    assert isinstance(actions[-1], Commit) and actions[-1].certificate.round == 0


def test_invalid_block_is_never_decided():
    h = Harness()
    h.start()
    v = block(1)
    h.invalid.add(v.hash)
    h.send(proposal(v, 0))
    actions = h.send(*(vote(i, "precommit", 0, v) for i in (1, 2, 3)))
    assert not any(isinstance(a, Commit) for a in actions)


def test_new_height_after_commit_and_buffered_next_height_messages():
    h = Harness()
    h.start()
    v = block(1)
    lock_on(h, v)
    early = vote(1, "prevote", 0, None, height=2)
    assert h.send(early) == []  # next height: buffered, not dropped
    actions = h.send(*(vote(i, "precommit", 0, v) for i in (1, 2)))
    commit = actions[-1]
    assert isinstance(commit, Commit)
    with pytest.raises(ValueError):
        h.m.new_height(GENESIS)  # the host must hand over a chain that includes the block
    next_chain = advance(GENESIS, v)
    actions = h.m.new_height(next_chain)
    assert (h.m.height, h.m.round, h.m.step, h.m.locked_round) == (2, 0, Step.PROPOSE, -1)
    assert h.m.log.count(0, "prevote", None) == 1  # the buffered vote was replayed


def test_decision_message_decides_and_bad_certificates_are_dropped():
    h = Harness()
    h.start()
    v = block(1)
    precommits = [vote(i, "precommit", 0, v) for i in (1, 2, 3)]
    cert = CommitCertificate.from_votes(precommits)
    short = CommitCertificate.from_votes(precommits[:2])
    forged = replace(cert, signatures=((cert.signatures[0][0], b"\x00" * 64), *cert.signatures[1:]))
    assert h.send(Decision(v, short)) == [] and h.send(Decision(v, forged)) == []
    assert h.m.dropped["bad_decision"] == 2
    actions = h.send(Decision(v, cert))
    assert actions == [Commit(v, cert)]


# -- round skip (55) ----------------------------------------------------------------------------


def test_f_plus_one_messages_of_a_higher_round_skip_to_it():
    h = Harness()
    h.start()
    h.send(vote(1, "prevote", 4, None))
    assert h.m.round == 0  # f = 1 message: could be a Byzantine node alone
    actions = h.send(vote(2, "precommit", 4, None))
    assert h.m.round == 4 and h.m.step == Step.PROPOSE
    assert ScheduleTimeout(1, 4, Step.PROPOSE, 5.0) in actions


def test_a_proposal_counts_towards_the_skip():
    h = Harness()
    h.start()
    v = block(1)
    h.send(proposal(v, 2))  # from v3, the proposer of (1, 2)
    h.send(vote(1, "prevote", 2, None))
    assert h.m.round == 2


# -- evidence --------------------------------------------------------------------------------


def test_conflicting_votes_become_evidence_once():
    h = Harness()
    h.start()
    v, w = block(1), block(2)
    h.send(proposal(v, 0))
    a, b, c = vote(2, "prevote", 0, v), vote(2, "prevote", 0, None), vote(2, "prevote", 0, w)
    assert h.send(a) == []
    actions = h.send(b)
    (record,) = [x.record for x in actions if isinstance(x, RecordEvidence)]
    assert record == duplicate_vote_record(b, a)
    evidence = check_evidence(record, VALIDATORS, chain_id=CHAIN)
    assert evidence.key == "duplicate_vote/v2/1/0/prevote"
    assert not any(isinstance(x, RecordEvidence) for x in h.send(c))  # same offence
    # both of v2's votes for known values count, each for its own value
    assert h.m.log.count(0, "prevote", v.hash) == 2  # v0 and v2
    assert h.m.log.count(0, "prevote", None) == 1
    assert h.m.log.count(0, "prevote", w.hash) == 0  # w is no stored proposal: not kept


def evidence_block(records: list[dict], tag: int = 5) -> Block:
    return build_block(
        GENESIS,
        txs=[],
        time=f"2026-01-01T00:00:{tag:02d}.000Z",
        proposer="v1",
        last_commit=None,
        evidence=records,
    )


def test_blocks_with_invalid_or_repeated_evidence_are_invalid():
    good = duplicate_vote_record(vote(3, "prevote", 0, None), vote(3, "prevote", 0, block(9)))
    same = vote(3, "prevote", 0, None).to_json()
    bogus = {"type": "duplicate_vote", "vote_a": same, "vote_b": same}
    cases = {
        "valid": ([good], False),
        "bogus": ([bogus], True),
        "twice": ([good, good], True),
        "committed": ([good], True),
    }
    for name, (records, rejected) in cases.items():
        h = Harness()
        if name == "committed":
            h.committed_evidence.add("duplicate_vote/v3/1/0/prevote")
        h.start()
        b = evidence_block(records)
        prevote = the_vote(h.send(proposal(b, 0)))
        assert (prevote.block_hash is None) == rejected, name


def test_evidence_pool_keeps_pending_then_committed_and_answers_queries():
    pool = EvidencePool()
    record = duplicate_vote_record(vote(3, "prevote", 0, None), vote(3, "prevote", 0, block(9)))
    assert pool.add(record) and not pool.add(record)
    assert pool.pending(10) == [record]
    b = evidence_block([record])
    pool.mark_committed(b)
    assert pool.pending(10) == [] and pool.is_committed("duplicate_vote/v3/1/0/prevote")
    (found,) = pool.query(validator="v3")
    assert (found.offence_height, found.block_height) == (1, b.height)
    assert pool.query(validator="v1") == [] and pool.query(height=1) == [found]
    assert not pool.add(record)  # committed offences are not pending again


# -- verification and bounds -------------------------------------------------------------------


def test_unverifiable_or_foreign_messages_are_dropped_and_counted():
    h = Harness()
    h.start()
    v = block(1)
    bad_sig = replace(vote(1, "prevote", 0, v), signature=vote(2, "prevote", 0, v).signature)
    other_chain = replace(vote(1, "prevote", 0, None), chain_id="other").signed(KEYS[1])
    stranger_key = PrivateKey.from_seed(b"\x07" * 32)
    stranger = Vote(CHAIN, 1, 0, "prevote", None, "mallory").signed(stranger_key)
    wrong_proposer = Proposal(CHAIN, 1, 0, -1, v, "v2").signed(KEYS[2])
    twice = vote(1, "prevote", 0, None)
    for message in (bad_sig, other_chain, stranger, wrong_proposer):
        assert h.send(message) == []
    absurd = vote(1, "prevote", CONFIG.max_round_ahead + 1, None)
    assert h.send(absurd) == []
    assert h.send(twice) == [] and h.send(twice) == []  # second copy: duplicate
    assert {k: h.m.dropped[k] for k in h.m.dropped} == {
        "bad_signature": 1,
        "wrong_chain": 1,
        "unknown_validator": 1,
        "not_proposer": 1,
        "absurd_round": 1,
        "duplicate": 1,
    }
    assert h.m.round == 0 and h.m.log.count(0, "prevote", None) == 1


def test_a_proposal_whose_body_does_not_match_its_header_is_dropped():
    h = Harness()
    h.start()
    v = block(1)
    other = evidence_block(
        [duplicate_vote_record(vote(3, "prevote", 0, None), vote(3, "prevote", 0, v))]
    )
    tampered = replace(proposal(v, 0), block=replace(v, evidence=other.evidence))
    assert h.send(tampered) == []  # the signature is over v's header: fine; the body is not v's
    assert h.m.dropped["bad_block_body"] == 1
    assert the_vote(h.send(proposal(v, 0))).block_hash == v.hash  # the genuine one still counts


def test_each_validator_gets_one_far_round():
    h = Harness()
    h.start()
    for r in range(10, 60):
        h.send(vote(1, "prevote", r, None), vote(1, "precommit", r, None))
    assert h.m.dropped["round_slot_taken"] == 98
    assert [r for r in range(100) if h.m.log.count(r, "prevote", "*")] == [10]
    assert h.m.round == 0


# -- the signing guard and restarts -------------------------------------------------------------


def test_restart_resends_the_same_vote_and_never_signs_another():
    h = Harness()
    h.start()
    v = block(1)
    prevote = the_vote(h.send(proposal(v, 0)))
    assert h.persisted is not None
    saved = SignState.from_json(h.persisted.to_json())  # through the persisted JSON form
    restarted = Harness(sign_state=saved)
    actions = restarted.start()
    assert broadcasts(actions) == [prevote]  # re-sent, same signature, nothing new signed
    assert not any(isinstance(a, PersistSignState) for a in actions)
    assert (restarted.m.round, restarted.m.step) == (0, Step.PREVOTE)
    restarted.send(proposal(v, 0))  # even a second look at the proposal signs nothing
    assert restarted.m.guard_conflicts == 0


def test_restart_keeps_the_lock():
    h = Harness()
    h.start()
    v, w = block(1), block(2)
    lock_on(h, v)
    restarted = h.restart()
    restarted.start()
    assert (restarted.m.locked_round, restarted.m.locked_value) == (0, v)
    restarted.send(*(vote(i, "precommit", 0, None) for i in (1, 2)))
    restarted.timeout(Step.PRECOMMIT, 0)
    assert the_vote(restarted.send(proposal(w, 1))).block_hash is None


def test_restarted_proposer_resends_its_proposal():
    h = Harness(me=1)
    h.start()
    b = block(1)
    h._track(h.m.on_proposal_value(b))
    saved = h.persisted
    assert saved is not None
    restarted = Harness(me=1, sign_state=replace(saved, step=Step.PROPOSE, votes=()))
    actions = restarted.start()
    (again,) = broadcasts(actions, Proposal)
    assert again == saved.proposals[0]
    assert not any(isinstance(a, RequestProposal) for a in actions)


def test_guard_refuses_a_conflicting_signature():
    h = Harness()
    h.start()
    v = block(1)
    first = the_vote(h.send(proposal(v, 0)))
    h.m.step = Step.PROPOSE  # simulate a bug that re-runs the prevote rule
    actions = h.timeout(Step.PROPOSE)
    assert broadcasts(actions) == [first] and h.m.guard_conflicts == 1


def test_sign_state_ahead_of_the_chain_follows_then_resumes_there():
    """The store lost blocks the sign state is past (WAL lost): no refusal, no signing
    below that height, and the saved round state is resumed once the chain gets there."""
    h = Harness()
    h.start()
    h.send(proposal(block(1), 0))
    ahead = replace(h.persisted, height=2, votes=(), proposals=())
    behind = Harness(sign_state=ahead)
    actions = behind.start()
    assert not behind.m.is_validator and not broadcasts(actions)
    assert not broadcasts(behind.timeout(Step.PROPOSE))  # height 1: never signs
    resumed = behind._track(behind.m.new_height(advance(GENESIS, block(1))))
    assert behind.m.is_validator and behind.m.height == 2
    assert not any(isinstance(a, RequestProposal) for a in resumed) or proposer_of(0, 2) == 0
    stale = replace(h.persisted, height=1)
    chain2 = advance(GENESIS, block(1))
    fresh = Harness(sign_state=stale, chain=chain2)  # already committed: start the next height
    fresh.start()
    assert (fresh.m.height, fresh.m.round) == (2, 0)


def test_held_signing_never_signs_until_allowed():
    """A lost sign state: the machine follows but signs nothing until the host allows a
    height; allowed mid-height past its proposal step, it signs in a fresh round."""
    h = Harness(signing_from=None)
    h.start()
    v = block(1)
    assert not broadcasts(h.send(proposal(v, 0)))  # the prevote rule fires, unsigned
    assert h.m.step is Step.PREVOTE and not h.m.is_validator
    later = Harness(signing_from=None)
    later.start()
    assert not later.m.allow_signing_from(2) and not later.m.is_validator  # not at height 1
    now = h._track(h.m.allow_signing_from(1))
    assert h.m.is_validator and h.m.round == 1 and any(isinstance(a, ScheduleTimeout) for a in now)
    signed = the_vote(h.send(proposal(block(2), 1)))
    assert (signed.round, signed.type) == (1, "prevote")


def test_signing_allowed_during_the_proposal_step_keeps_the_round():
    h = Harness(signing_from=None)
    h.start()
    h._track(h.m.allow_signing_from(1))
    assert h.m.round == 0 and the_vote(h.send(proposal(block(1), 0))).round == 0


def test_gossip_resends_own_votes_and_the_proof_of_lock():
    h = Harness()
    h.start()
    v = block(1)
    lock_on(h, v)
    gossip = h.m.gossip()
    own = [m for m in gossip if isinstance(m, Vote) and m.validator == "v0"]
    assert {(m.type, m.block_hash) for m in own} == {("prevote", v.hash), ("precommit", v.hash)}
    assert proposal(v, 0) in gossip
    assert {m.validator for m in gossip if isinstance(m, Vote) and m.type == "prevote"} == {
        "v0",
        "v1",
        "v2",
        "v3",
    }


def test_a_non_validator_follows_without_signing():
    m = ConsensusState(GENESIS, validator_id=None, key=None, valid=lambda b: None, config=CONFIG)
    m.start()
    v = block(1)
    assert m.on_message(proposal(v, 0)) == []
    m.on_message(vote(1, "precommit", 0, v))
    m.on_message(vote(2, "precommit", 0, v))
    actions = m.on_message(vote(3, "precommit", 0, v))
    assert isinstance(actions[-1], Commit)


# -- messages and evidence records ---------------------------------------------------------------


def test_messages_round_trip_through_the_wire_form():
    v = block(1)
    cert = CommitCertificate.from_votes([vote(i, "precommit", 0, v) for i in (1, 2, 3)])
    for message in (proposal(v, 2, pol_round=1), vote(1, "prevote", 0, v), Decision(v, cert)):
        assert decode(encode(message)) == message


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"kind": "vote"},
        {"kind": "commit", "body": {}},
        {"kind": "vote", "body": {"chain_id": CHAIN}},
        {"kind": "proposal", "body": 7},
        {"kind": "decision", "body": {"block": [], "certificate": "x"}},
    ],
)
def test_decode_rejects_malformed_messages_with_typed_errors(data):
    with pytest.raises(LedgerError):
        decode(data)


def test_decode_rejects_out_of_range_fields():
    body = encode(proposal(block(1), 2, pol_round=1))
    for field, value in (
        ("pol_round", 2),
        ("pol_round", -2),
        ("round", MAX_ROUND + 1),
        ("height", 0),
    ):
        data = {"kind": "proposal", "body": {**body["body"], field: value}}
        with pytest.raises(LedgerError):
            decode(data)
    vote_body = encode(vote(1, "prevote", 0, None))["body"]
    with pytest.raises(LedgerError):
        decode({"kind": "vote", "body": {**vote_body, "round": 2**60}})
    with pytest.raises(MessageTooLarge):
        parse(b" " * (9 * 1024 * 1024))
    with pytest.raises(LedgerError):
        parse(b"[" * 100000 + b"]" * 100000)


def test_proposal_signature_covers_the_block_hash():
    p = proposal(block(1), 0)
    p.verify(VALIDATORS)
    moved = replace(p, block=block(2))
    with pytest.raises(LedgerError):
        moved.verify(VALIDATORS)


def test_evidence_records_are_checked_strictly():
    a, b = vote(2, "prevote", 0, None), vote(2, "prevote", 0, block(1))
    good = duplicate_vote_record(a, b)
    assert check_evidence(good, VALIDATORS, chain_id=CHAIN, max_height=1).validator == "v2"
    first, second = good["vote_a"], good["vote_b"]
    other_round = vote(2, "prevote", 1, block(1)).to_json()
    other_signer = vote(3, "prevote", 0, block(1)).to_json()
    forged = {**second, "signature": first["signature"]}
    bad = {
        "reversed": {"type": "duplicate_vote", "vote_a": second, "vote_b": first},
        "agreeing": {"type": "duplicate_vote", "vote_a": first, "vote_b": first},
        "rounds": duplicate_vote_record(a, Vote.from_json(other_round)),
        "signers": duplicate_vote_record(a, Vote.from_json(other_signer)),
        "forged": dict(zip(("vote_a", "vote_b"), sorted_pair(first, forged), strict=True))
        | {"type": "duplicate_vote"},
        "kind": {**good, "type": "light_client_attack"},
        "extra": {**good, "note": 1},
    }
    for name, record in bad.items():
        with pytest.raises(LedgerError):
            check_evidence(record, VALIDATORS)
            pytest.fail(name)
    with pytest.raises(EvidenceError):
        check_evidence(good, VALIDATORS, chain_id="other")
    with pytest.raises(EvidenceError):
        check_evidence(good, VALIDATORS, max_height=0)
    assert DuplicateVote.from_json(good).key == "duplicate_vote/v2/1/0/prevote"


def sorted_pair(x: dict, y: dict) -> tuple[dict, dict]:
    from ledger import codec

    return (x, y) if codec.canonical(x) < codec.canonical(y) else (y, x)


# -- robustness: arbitrary input never crashes the machine or breaks the contract ------------------

_VALUES = [None, block(1), block(2)]


@st.composite
def inputs(draw: st.DrawFn) -> list[tuple[str, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["vote", "proposal", "timeout", "junk"]))
        r = draw(st.integers(0, 4))
        if kind == "vote":
            steps.append(
                (
                    "msg",
                    vote(
                        draw(st.integers(1, 3)),
                        draw(st.sampled_from(["prevote", "precommit"])),
                        r,
                        draw(st.sampled_from(_VALUES)),
                    ),
                )
            )
        elif kind == "proposal":
            b = draw(st.sampled_from(_VALUES[1:]))
            steps.append(("msg", proposal(b, r, pol_round=draw(st.integers(-1, r - 1)))))
        elif kind == "timeout":
            steps.append(
                (
                    "timeout",
                    Timeout(
                        1, r, draw(st.sampled_from([Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT]))
                    ),
                )
            )
        else:
            v = vote(1, "prevote", r, None)
            steps.append(
                (
                    "msg",
                    replace(v, round=draw(st.sampled_from([r + 7, 10**9])), signature=b"\x01" * 64),
                )
            )
    return steps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_any_input_sequence_keeps_the_contract_and_never_equivocates(steps):
    h = Harness()
    h.start()
    signed: dict[tuple[int, str], str | None] = {}
    for kind, item in steps:
        actions = h.send(item) if kind == "msg" else h._track(h.m.on_timeout(item))
        for message in broadcasts(actions):
            if message.validator == "v0":
                assert (
                    signed.setdefault((message.round, message.type), message.block_hash)
                    == message.block_hash
                )
        if h.m.step == Step.COMMIT:
            break
    assert h.m.guard_conflicts == 0


def test_messages_of_other_heights_are_dropped_or_buffered():
    v = block(1)
    h = Harness(chain=advance(GENESIS, v))  # at height 2
    h.start()
    assert h.send(vote(1, "prevote", 0, None, height=1)) == []
    assert h.send(vote(1, "prevote", 0, None, height=5)) == []
    assert h.m.dropped == {"old_height": 1, "far_height": 1}


def test_a_vote_with_an_unencodable_field_is_unsigned_not_a_crash():
    h = Harness()
    h.start()
    huge = replace(vote(1, "prevote", 0, None), height=2**62)
    assert verify_signature(huge, VALIDATORS) is False
    assert h.send(replace(vote(1, "prevote", 0, None), round=5, signature=b"\x00" * 64)) == []
    with pytest.raises(LedgerError):
        decode(
            {
                "kind": "vote",
                "body": {**encode(vote(1, "prevote", 0, None))["body"], "height": 2**62},
            }
        )


def test_next_height_buffer_is_bounded_per_known_validator():
    h = Harness()
    h.start()
    for r in range(20):
        h.send(vote(1, "prevote", r, None, height=2))
    fake = [replace(vote(1, "prevote", 0, None, height=2), validator=f"x{i}") for i in range(50)]
    h.send(*fake)
    assert len(h.m._future) == CONFIG.max_future_per_sender
    assert h.m.dropped == {
        "future_full": 20 - CONFIG.max_future_per_sender,
        "unknown_validator": 50,
    }


def test_every_message_kind_has_a_height_and_evidence_gossip_is_checked():
    v = block(1)
    record = duplicate_vote_record(vote(2, "prevote", 0, None), vote(2, "prevote", 0, v))
    cert = CommitCertificate.from_votes([vote(i, "precommit", 0, v) for i in (1, 2, 3)])
    for message in (proposal(v, 0), vote(1, "prevote", 0, v), Decision(v, cert), Evidence(record)):
        assert decode(encode(message)).height == 1
    h = Harness()
    h.start()
    (recorded,) = h.send(Evidence(record))
    assert isinstance(recorded, RecordEvidence) and recorded.record == record
    assert h.send(Evidence(record)) == []  # known offence
    h.committed_evidence.add("duplicate_vote/v1/1/0/prevote")
    other = duplicate_vote_record(vote(1, "prevote", 0, None), vote(1, "prevote", 0, v))
    assert h.send(Evidence(other)) == []  # already committed
    same = vote(3, "prevote", 0, None).to_json()
    assert h.send(Evidence({"type": "duplicate_vote", "vote_a": same, "vote_b": same})) == []
    assert h.m.dropped == {"known_evidence": 2, "bad_evidence": 1}
