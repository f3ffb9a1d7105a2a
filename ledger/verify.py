"""Full-chain verification of a store: recompute every hash, Merkle root, chain link and
signature from the stored bytes, and name the first height where anything is wrong.

The verifier trusts nothing in the database. With a genesis file it trusts only that file;
without one it uses the genesis copy kept in the store (and says so in the report).
Stored objects must be in canonical form byte for byte, and every index column must agree
with the canonical text it was derived from, so a single changed byte anywhere in a
payload, signature, header field or commit signature is found, at its height.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from . import codec, parallel
from .block import Block, CommitCertificate
from .chain import ChainState, advance, check_next
from .errors import LedgerError
from .evidence import check_evidence
from .genesis import Genesis
from .membership import Membership
from .precheck import Prechecked, canonical_json

__all__ = ["Checked", "Problem", "Tip", "VerifyReport", "canonical_json", "verify_store"]
from .store import Store
from .tallies import Tally
from .validate import DomainRules, check_txs

#: Builds the domain's rules over the chain in a store (the node passes
#: traceability.validity.trace_rules); None checks the chain's own rules only.
RulesFactory = Callable[[Store], DomainRules]


@dataclass
class Problem:
    height: int
    what: str


@dataclass(frozen=True)
class Tip:
    """The chain after its last verified block: what the next block is checked against."""

    state: ChainState
    membership: Membership
    last_commit: CommitCertificate | None
    evidence_keys: frozenset[str]
    #: the domain's state after the last block (None when verified without domain rules)
    rules: DomainRules | None = None


@dataclass
class VerifyReport:
    chain_id: str = ""
    genesis_hash: str = ""
    genesis_source: str = ""
    head_height: int = 0
    head_hash: str = ""
    log_size: int = 0
    blocks: int = 0
    transactions: int = 0
    signatures: int = 0
    seconds: float = 0.0
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)
    tip: Tip | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tip"}
        data["problem"] = asdict(self.problem) if self.problem else None
        data["ok"] = self.ok
        return data


@dataclass(frozen=True)
class Checked:
    """How far a verification is: what `verify_store`'s `on_checked` hook is given."""

    height: int
    heights: int
    events: int
    events_total: int


class _Found(Exception):
    """A problem found by the first stage, raised where the sequence reaches it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Replay:
    """The second stage: the checks that need the chain's state up to the block before
    (links, validator set, certificates, evidence, membership, the domain's rules, the
    whole-ledger log and the running totals), one block after the other."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        report: VerifyReport,
        domain: DomainRules | None,
        check_indexes: bool,
        start: Tip | None = None,
    ) -> None:
        self.store, self.report, self.check_indexes = store, report, check_indexes
        self.state = genesis.initial_state() if start is None else start.state
        self.membership = genesis.membership() if start is None else start.membership
        self.last_commit: CommitCertificate | None = None if start is None else start.last_commit
        self.evidence_keys: set[str] = set() if start is None else set(start.evidence_keys)
        self.domain = domain if start is None else start.rules

    def step(self, pre: Prechecked) -> bool:
        """Check the next block; False (the report naming the problem) when it fails."""
        state, height = self.state, pre.height
        try:
            if height != state.height + 1:
                raise LedgerError(f"block {state.height + 1} is missing")
            if pre.problem is not None or pre.block is None or pre.commit is None:
                raise _Found(pre.problem or "block could not be read")
            block, commit = replace(pre.block, last_commit=self.last_commit), pre.commit
            nodes = check_next(state, block)
            commit.verify(
                state.validators, chain_id=state.chain_id, height=height, block_hash=block.hash
            )
            for record in block.evidence:
                key = check_evidence(
                    record, state.validators, chain_id=state.chain_id, max_height=height
                ).key
                if key in self.evidence_keys:
                    raise LedgerError(f"evidence {key} was already committed")
                self.evidence_keys.add(key)
            # Ids are unique by the store's primary key and each equals its body's hash.
            domain = self.domain
            pending = domain.begin(height, block.header.time) if domain is not None else None
            membership = check_txs(
                block.txs,
                self.membership,
                height=height,
                time=block.header.time,
                known=_none_known,
                rules=pending,
            )
            if self.check_indexes:
                _check_log_nodes(self.store, nodes)
                if pre.index_problem is not None:
                    raise _Found(pre.index_problem)
                if pending is not None:
                    _check_tallies(self.store, block, pending.tallies())
        except (LedgerError, _Found) as exc:
            what = exc.message if hasattr(exc, "message") else str(exc)
            self.report.problem = Problem(height, what)
            return False
        except (ValueError, KeyError, TypeError) as exc:
            self.report.problem = Problem(height, f"malformed stored data: {exc}")
            return False
        self.last_commit, self.membership = commit, membership
        if pending is not None:
            self.domain = pending.result()
        self.state = advance(state, block, membership.validators)
        self.report.blocks += 1
        self.report.transactions += len(block.txs)
        self.report.signatures += len(block.txs) + len(commit.signatures)
        return True

    def tip(self) -> Tip:
        return Tip(
            self.state,
            self.membership,
            self.last_commit,
            frozenset(self.evidence_keys),
            self.domain,
        )


def verify_store(
    store: Store,
    genesis: Genesis | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    on_checked: Callable[[Checked], None] | None = None,
    check_indexes: bool = True,
    rules: RulesFactory | None = None,
    workers: int = 1,
    chunk: int | None = None,
    start: Tip | None = None,
) -> VerifyReport:
    """Replay the stored chain from genesis, checking everything; stop at the first problem.

    `start`: the state after a block already verified (a node's checkpoint, with the
    domain state of the same `rules`); only the blocks above it are replayed.

    `rules`: the domain's block rules, the same function that judged every block when it
    was proposed, so a transaction written into the store behind the nodes' backs that no
    validator would have accepted fails here too.

    `workers` > 1: the first stage of every block's check (`precheck`: parsing, every
    canonical byte and derived column, and the transaction signatures and payload shapes)
    runs in that many worker processes over ranges of `chunk` blocks, while this process
    replays the blocks in order as their first stages arrive (`ledger.parallel`). Same
    checks, same finding. A store other processes cannot open is verified here alone.
    `progress(height, total)` and `on_checked(Checked)` are called after every block.

    A running node keeps committing while this reads: the chain is verified up to the
    height it had when verification started, every block below it is read (blocks are
    only ever appended), and blocks committed since are left to the next run, so a live
    verification never reports a block as missing that is merely new."""
    started = time.perf_counter()
    report = VerifyReport()
    stored_hash = store.meta("genesis_hash")
    stored_doc = store.genesis_doc()
    if genesis is None:
        if stored_doc is None:
            report.problem = Problem(0, "the store holds no genesis and none was given")
            return report
        try:
            genesis = Genesis.from_json(stored_doc)
        except LedgerError as exc:
            report.problem = Problem(0, f"stored genesis is invalid: {exc}")
            return report
        report.genesis_source = "store (give --genesis to check against a trusted file)"
    else:
        report.genesis_source = "file"
    report.chain_id, report.genesis_hash = genesis.chain_id, genesis.hash
    if stored_hash is not None and stored_hash != genesis.hash:
        report.problem = Problem(0, "the store belongs to another genesis than the one given")
        return report
    if stored_doc is not None and codec.canonical(stored_doc) != codec.canonical(genesis.to_json()):
        report.problem = Problem(0, "the store's copy of genesis differs from the genesis given")
        return report

    total = store.height()
    domain = rules(store) if rules is not None and start is None else None
    if check_indexes and store.index is None:
        report.notes.append(
            f"product index not checked: it is keyed by {store.indexed_by()!r}, which this "
            "verification was not given (verify with the domain rules)"
        )
    events_total = 0
    if on_checked is not None and total:
        last = store.header(total)
        events_total = last.log_size if last is not None else 0
    replay = _Replay(store, genesis, report, domain, check_indexes, start)
    first = replay.state.height + 1
    with parallel.prechecked(
        store,
        genesis,
        first,
        total,
        workers=workers,
        rules=rules,
        check_indexes=check_indexes,
        chunk=chunk,
    ) as blocks:
        for pre in blocks:  # the store as it was when the check began
            parallel.take_verdicts(pre, replay.domain)
            if not replay.step(pre):
                break
            if progress:
                progress(pre.height, total)
            if on_checked:
                on_checked(Checked(pre.height, total, report.transactions, events_total))
    state = replay.state
    if report.problem is None and total != state.height:
        report.problem = Problem(state.height + 1, f"block {state.height + 1} is missing")
    report.head_height = state.height
    report.head_hash = state.head_hash
    report.log_size = state.log.size if state.log else 0
    report.seconds = round(time.perf_counter() - started, 3)
    report.tip = replay.tip()
    return report


def restore_chain(
    store: Store,
    genesis: Genesis,
    *,
    rules: RulesFactory | None = None,
    start: Tip | None = None,
) -> Tip:
    """What a node needs to go on from its store, after checking every stored block (above
    `start`, a state verified before).

    A node whose store fails verification must not start: this raises, naming the height.
    """
    report = verify_store(store, genesis, rules=rules, start=start)
    if report.problem is not None:
        raise LedgerError(
            f"the store fails verification at height {report.problem.height}: {report.problem.what}"
        )
    assert report.tip is not None
    return report.tip


def _none_known(_ids: list[str]) -> set[str]:
    return set()


def _check_tallies(store: Store, block: Block, tallies: list[Tally]) -> None:
    """The stored running totals of a block are the ones the rules' replay derives."""
    first = block.header.log_size - len(block.txs)
    expected = {(key, first + pos, amount) for pos, key, amount in tallies}
    stored = store.tally_rows(first, block.header.log_size - 1) if block.txs else []
    if set(stored) != expected or len(stored) != len(expected):
        raise LedgerError("stored running totals differ from the ones the block's rules derive")


def _check_log_nodes(store: Store, nodes: list[tuple[int, int, bytes]]) -> None:
    """The stored log nodes are the ones the verified block completes."""
    by_level: dict[int, dict[int, bytes]] = {}
    for level, index, digest in nodes:
        by_level.setdefault(level, {})[index] = digest
    for level, expected in by_level.items():
        stored = store.log_nodes(level, min(expected), max(expected))
        if stored != expected:
            raise LedgerError("stored log nodes differ from the ones this block produces")
