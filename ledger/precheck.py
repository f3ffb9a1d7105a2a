"""The first stage of a stored block's check: what its stored rows decide alone, so that
any process can make it, for any block, in any order (`ledger.verify` replays the
results in height order; `ledger.parallel` makes them in worker processes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import codec
from .block import Block, CommitCertificate, Header
from .claims import tx_claims
from .errors import LedgerError
from .store import RawBlock, Store
from .tx import Transaction


def canonical_json(text: str, what: str) -> Any:
    """Parse stored text and insist it is the canonical encoding of what it says."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"{what} is not valid JSON: {exc}") from exc
    if codec.canonical(value).decode("utf-8") != text:
        raise LedgerError(f"{what} is not in canonical form (stored bytes were altered)")
    return value


def stored_header(raw: RawBlock) -> Header:
    """The header of a stored block, which its row's height, hash and time must agree with."""
    header = Header.from_json(canonical_json(raw.header, "header"))
    if header.height != raw.height:
        raise LedgerError(f"header says height {header.height}, row says {raw.height}")
    if raw.hash.hex() != header.hash:
        raise LedgerError("stored block hash differs from the hash of the stored header")
    if raw.time != header.time:
        raise LedgerError("stored block time differs from the header's")
    return header


def _parse_block(raw: RawBlock) -> tuple[Block, CommitCertificate]:
    """The block and its commit from its stored rows (the block's last commit is added
    by the replay, which holds the previous block's)."""
    header = stored_header(raw)
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
    return Block(header, tuple(txs), tuple(evidence), None), commit


@dataclass(frozen=True)
class Prechecked:
    """The first stage of a block's check, which needs the block's stored rows alone (so
    any process can do it, for any block, in any order): its parse, with every byte
    canonical and every column agreeing with it, and its product and claims index rows.

    The replay (`_Replay.step`, in height order) raises what was found here at the point
    of the sequence where the single-pass check finds it, so both give the same finding.
    `verified` and `domain` are verdicts of pure checks made in a worker process (the
    signature-cache tokens of the transaction signatures it verified, and what the
    domain's `precheck_block` found); the replay still makes every check, these only
    save it repeating one whose result is a function of the stored bytes."""

    height: int
    block: Block | None
    commit: CommitCertificate | None
    problem: str | None = None
    index_problem: str | None = None
    verified: tuple[bytes, ...] = ()
    domain: Any = None


def _problem_text(exc: Exception) -> str:
    if isinstance(exc, LedgerError):
        return exc.message if hasattr(exc, "message") else str(exc)
    return f"malformed stored data: {exc}"


def precheck(store: Store, raw: RawBlock, check_indexes: bool = True) -> Prechecked:
    """Stage one of the check of one stored block (see `Prechecked`)."""
    try:
        block, commit = _parse_block(raw)
    except (LedgerError, ValueError, KeyError, TypeError) as exc:
        return Prechecked(raw.height, None, None, _problem_text(exc))
    index_problem = None
    if check_indexes:
        try:
            _check_product_index(store, block)
        except Exception as exc:  # raised only where the replay gets to this check
            index_problem = _problem_text(exc)
    return Prechecked(raw.height, block, commit, None, index_problem)


def _check_product_index(store: Store, block: Block) -> None:
    """The product index and claims rows agree with the block's transactions, the product
    index as keyed by the store's ProductIndex (the domain's canonical key)."""
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
