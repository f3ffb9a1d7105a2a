"""Full-chain verification of a store: recompute every hash, Merkle root, chain link and
signature from the stored bytes, and name the first height where anything is wrong.

The verifier trusts nothing in the database. With a genesis file it trusts only that file;
without one it uses the genesis copy kept in the store (and says so in the report).
Stored objects must be in canonical form byte for byte, and every index column must agree
with the canonical text it was derived from, so a single changed byte anywhere in a
payload, signature, header field or commit signature is found, at its height.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import codec
from .block import Block, CommitCertificate, Header
from .chain import ChainState, advance, check_next
from .claims import tx_claims
from .errors import LedgerError
from .evidence import check_evidence
from .genesis import Genesis
from .membership import Membership
from .store import RawBlock, Store
from .tallies import Tally
from .tx import Transaction
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


def canonical_json(text: str, what: str) -> Any:
    """Parse stored text and insist it is the canonical encoding of what it says."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"{what} is not valid JSON: {exc}") from exc
    if codec.canonical(value).decode("utf-8") != text:
        raise LedgerError(f"{what} is not in canonical form (stored bytes were altered)")
    return value


def _parse_block(
    raw: RawBlock, last_commit: CommitCertificate | None
) -> tuple[Block, CommitCertificate]:
    header = Header.from_json(canonical_json(raw.header, "header"))
    if header.height != raw.height:
        raise LedgerError(f"header says height {header.height}, row says {raw.height}")
    if raw.hash.hex() != header.hash:
        raise LedgerError("stored block hash differs from the hash of the stored header")
    if raw.time != header.time:
        raise LedgerError("stored block time differs from the header's")
    evidence = canonical_json(raw.evidence, "evidence")
    if not isinstance(evidence, list):
        raise LedgerError("evidence is not a list")
    commit = CommitCertificate.from_json(canonical_json(raw.commit, "commit certificate"))
    txs = []
    for position, row in enumerate(raw.txs):
        where = f"transaction {position}"
        try:
            tx = Transaction.from_canonical(row.envelope.encode("utf-8"))
        except LedgerError as exc:
            raise LedgerError(f"{where}: {exc.message}") from exc
        if row.position != position:
            raise LedgerError(f"{where}: positions are not contiguous")
        if row.id.hex() != tx.id:
            raise LedgerError(f"{where}: stored id differs from the hash of its body")
        if row.type != tx.type or row.signer != tx.signer:
            raise LedgerError(f"{where}: stored type/signer columns differ from its body")
        if row.log_index != header.log_size - header.tx_count + position:
            raise LedgerError(f"{where}: stored log index is wrong")
        txs.append(tx)
    return Block(header, tuple(txs), tuple(evidence), last_commit), commit


def verify_store(
    store: Store,
    genesis: Genesis | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    check_indexes: bool = True,
    rules: RulesFactory | None = None,
    start: Tip | None = None,
) -> VerifyReport:
    """Replay the stored chain from genesis, checking everything; stop at the first problem.

    `start`: the state after a block already verified (a node's checkpoint, with the
    domain state of the same `rules`); only the blocks above it are replayed.

    `rules`: the domain's block rules, the same function that judged every block when it
    was proposed, so a transaction written into the store behind the nodes' backs that no
    validator would have accepted fails here too.

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
    if start is None:
        state, membership, last_commit = genesis.initial_state(), genesis.membership(), None
        evidence_keys: set[str] = set()
        domain = rules(store) if rules is not None else None
    else:
        state, membership, last_commit = start.state, start.membership, start.last_commit
        evidence_keys, domain = set(start.evidence_keys), start.rules
    if check_indexes and store.index is None:
        report.notes.append(
            f"product index not checked: it is keyed by {store.indexed_by()!r}, which this "
            "verification was not given (verify with the domain rules)"
        )
    # The store as it was when the check began.
    for raw in store.raw_blocks(state.height + 1, total):
        height = raw.height
        try:
            if height != state.height + 1:
                raise LedgerError(f"block {state.height + 1} is missing")
            block, commit = _parse_block(raw, last_commit)
            nodes = check_next(state, block)
            commit.verify(
                state.validators, chain_id=state.chain_id, height=height, block_hash=block.hash
            )
            for record in block.evidence:
                key = check_evidence(
                    record, state.validators, chain_id=state.chain_id, max_height=height
                ).key
                if key in evidence_keys:
                    raise LedgerError(f"evidence {key} was already committed")
                evidence_keys.add(key)
            # Ids are unique by the store's primary key and each equals its body's hash.
            pending = domain.begin(height, block.header.time) if domain is not None else None
            membership = check_txs(
                block.txs,
                membership,
                height=height,
                time=block.header.time,
                known=_none_known,
                rules=pending,
            )
            if check_indexes:
                _check_indexes(store, block, nodes)
                if pending is not None:
                    _check_tallies(store, block, pending.tallies())
        except LedgerError as exc:
            report.problem = Problem(height, exc.message if hasattr(exc, "message") else str(exc))
            break
        except (ValueError, KeyError, TypeError) as exc:
            report.problem = Problem(height, f"malformed stored data: {exc}")
            break
        last_commit = commit
        if pending is not None:
            domain = pending.result()
        state = advance(state, block, membership.validators)
        report.blocks += 1
        report.transactions += len(block.txs)
        report.signatures += len(block.txs) + len(commit.signatures)
        if progress:
            progress(height, total)
    if report.problem is None and total != state.height:
        report.problem = Problem(state.height + 1, f"block {state.height + 1} is missing")
    report.head_height = state.height
    report.head_hash = state.head_hash
    report.log_size = state.log.size if state.log else 0
    report.seconds = round(time.perf_counter() - started, 3)
    report.tip = Tip(state, membership, last_commit, frozenset(evidence_keys), domain)
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


def _check_indexes(store: Store, block: Block, nodes: list[tuple[int, int, bytes]]) -> None:
    """Derived tables (log nodes, product index) must agree with the verified block; the
    product index as keyed by the store's ProductIndex (the domain's canonical key)."""
    by_level: dict[int, dict[int, bytes]] = {}
    for level, index, digest in nodes:
        by_level.setdefault(level, {})[index] = digest
    for level, expected in by_level.items():
        stored = store.log_nodes(level, min(expected), max(expected))
        if stored != expected:
            raise LedgerError("stored log nodes differ from the ones this block produces")
    index = store.index
    if block.txs and index is not None:
        first = block.header.log_size - len(block.txs)
        expected_rows = {
            (ident, first + pos)
            for pos, tx in enumerate(block.txs)
            for ident in index.identifiers(tx.type, tx.payload)
        }
        if set(store.product_rows(first, block.header.log_size - 1)) != expected_rows:
            raise LedgerError("stored product index differs from the block's transactions")
        expected_claims = {
            (key, first + pos)
            for pos, tx in enumerate(block.txs)
            for key in tx_claims(tx.type, tx.payload)
        }
        if set(store.claim_rows(first, block.header.log_size - 1)) != expected_claims:
            raise LedgerError("stored claims index differs from the block's transactions")
