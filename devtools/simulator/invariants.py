"""The invariants, checked as the run goes (not only at the end):

* agreement: no two honest nodes commit different blocks at one height;
* validity: every block an honest node commits extends the agreed chain (ledger
  check_next, which also checks the previous commit carried in the header), carries a
  certificate of 2f+1 valid precommits, holds only transactions signed by registered keys
  and never seen before, and only valid, new evidence;
* no double signing: no honest validator signs two different votes for one (height, round,
  type), counted across crashes and restarts, and no honest machine even asks its guard to;
* locking (the lemma agreement rests on): an honest validator that precommitted v in round
  r prevotes another value w in a later round r' only if a proof of lock for w exists,
  2f+1 signed prevotes for w in some round vr with r <= vr < r'. It catches a lock bug as
  soon as it acts, not only in the rare runs where the network then splits the decision;
* liveness: checked by the simulation once the network has healed.

The checker keeps its own copy of the chain, built only from ledger functions, so a bug in
the nodes' hosts cannot hide a bad block.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import Block, CommitCertificate, Vote
from ledger.chain import ChainState, advance, check_next
from ledger.errors import LedgerError
from ledger.evidence import check_evidence
from nodes.consensus.messages import verify_signature

from .world import registry


@dataclass(frozen=True)
class Violation:
    invariant: str
    time: float
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} at t={self.time:.3f}: {self.detail}"


class Checker:
    def __init__(self, chain: ChainState, *, check_locking: bool = True) -> None:
        self.check_locking = check_locking
        self.chain = chain  # the agreed chain, as far as any honest node has committed
        self.hashes: dict[int, str] = {}
        self.tx_ids: set[str] = set()
        self.offences: dict[str, int] = {}  # offence key -> height of the block holding it
        self.detected: dict[str, int] = {}  # offence key -> offence height, when first seen
        self.signed: dict[tuple[str, int, int, str], Vote] = {}
        self.prevoted: dict[tuple[int, int, str], set[str]] = {}  # (h, r, value) -> signers
        self.locks: dict[tuple[str, int], tuple[int, str]] = {}  # (validator, h) -> (r, value)
        self.violations: list[Violation] = []
        self._certs: set[tuple[object, ...]] = set()  # certificates already verified

    def _fail(self, invariant: str, now: float, detail: str) -> None:
        self.violations.append(Violation(invariant, now, detail))

    # -- double signing ------------------------------------------------------------------
    def on_wire(self, vote: Vote) -> None:
        """A vote some node sent (honest or not): remembered if validly signed, for proofs
        of lock."""
        if vote.type != "prevote" or vote.block_hash is None:
            return
        signers = self.prevoted.setdefault((vote.height, vote.round, vote.block_hash), set())
        if vote.validator not in signers and verify_signature(vote, self.chain.validators):
            signers.add(vote.validator)

    def on_signed(self, vote: Vote, now: float) -> None:
        """Every vote an honest node persisted or sent."""
        key = (vote.validator, vote.height, vote.round, vote.type)
        held = self.signed.get(key)
        if held is None:
            self.signed[key] = vote
            self.on_wire(vote)
            self._check_lock(vote, now)
        elif held.block_hash != vote.block_hash:
            self._fail(
                "no_double_sign",
                now,
                f"{vote.validator} signed {vote.type} h{vote.height} r{vote.round} "
                f"for {held.block_hash} and {vote.block_hash}",
            )

    def _check_lock(self, vote: Vote, now: float) -> None:
        if vote.block_hash is None or not self.check_locking:
            return
        where = (vote.validator, vote.height)
        lock = self.locks.get(where)
        if vote.type == "precommit":  # an honest non-nil precommit is a lock (line 36)
            if lock is None or vote.round > lock[0]:
                self.locks[where] = (vote.round, vote.block_hash)
            return
        if lock is None or lock[1] == vote.block_hash:
            return
        quorum = self.chain.validators.quorum
        for pol_round in range(lock[0], vote.round):
            if len(self.prevoted.get((vote.height, pol_round, vote.block_hash), ())) >= quorum:
                return
        self._fail(
            "locking",
            now,
            f"{vote.validator} locked {lock[1][:12]} in round {lock[0]} of height {vote.height}"
            f" but prevoted {vote.block_hash[:12]} in round {vote.round} with no proof of lock",
        )

    def on_guard(self, node: str, conflicts: int, now: float) -> None:
        if conflicts:
            self._fail("no_double_sign", now, f"{node} tried {conflicts} conflicting signature(s)")

    # -- agreement and validity ---------------------------------------------------------
    def on_commit(self, node: str, block: Block, cert: CommitCertificate, now: float) -> None:
        height = block.height
        known = self.hashes.get(height)
        if known is not None and known != block.hash:
            self._fail(
                "agreement",
                now,
                f"{node} committed {block.hash[:12]} at {height}, another honest node {known[:12]}",
            )
            return
        if known is None:
            problem = self._extends(block)
            if problem:
                self._fail(
                    "validity", now, f"{node} committed an invalid block {height}: {problem}"
                )
                return
        seen = (height, cert.round, cert.block_hash, cert.signatures)
        if seen in self._certs:
            return
        try:
            cert.verify(
                self.chain.validators,
                chain_id=self.chain.chain_id,
                height=height,
                block_hash=block.hash,
            )
        except LedgerError as exc:
            self._fail("validity", now, f"{node} stored a bad certificate for {height}: {exc}")
        self._certs.add(seen)
        if known is None:
            self._append(block)

    def _extends(self, block: Block) -> str | None:
        if block.height != self.chain.height + 1:
            return f"expected height {self.chain.height + 1}"
        try:
            check_next(self.chain, block)
        except LedgerError as exc:
            return str(exc)
        ids = set()
        for tx in block.txs:
            key = registry().get(tx.signer)
            if key is None or tx.chain_id != self.chain.chain_id:
                return f"tx {tx.id[:12]} has an unknown signer or chain"
            try:
                tx.verify_signature(key)
            except LedgerError as exc:
                return f"tx {tx.id[:12]}: {exc}"
            if tx.id in self.tx_ids or tx.id in ids:
                return f"tx {tx.id[:12]} is a duplicate"
            ids.add(tx.id)
        keys = set()
        for record in block.evidence:
            try:
                evidence = check_evidence(
                    record,
                    self.chain.validators,
                    chain_id=self.chain.chain_id,
                    max_height=block.height,
                )
            except LedgerError as exc:
                return f"evidence: {exc}"
            if evidence.key in self.offences or evidence.key in keys:
                return f"evidence {evidence.key} committed twice"
            keys.add(evidence.key)
        return None

    def _append(self, block: Block) -> None:
        self.hashes[block.height] = block.hash
        self.tx_ids.update(tx.id for tx in block.txs)
        for record in block.evidence:
            evidence = check_evidence(record, self.chain.validators)
            self.offences[evidence.key] = block.height
        self.chain = advance(self.chain, block)

    # -- evidence -------------------------------------------------------------------------
    def on_evidence(self, key: str, offence_height: int) -> None:
        self.detected.setdefault(key, offence_height)
