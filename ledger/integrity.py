"""Re-hash a verified prefix of a store: the check a node makes of the blocks below its
checkpoint when it restarts.

Every stored byte that the chain hashes is hashed again and linked up to the head hash the
checkpoint attests: each header's own hash and its link to the one before, each block's
transactions against its tx_root, its evidence against evidence_hash, each stored commit
certificate against the next header's last_commit_hash (the head's against the
checkpoint's). Since those are the bytes the node verified when it wrote the checkpoint, a
changed byte anywhere is found without verifying a single signature again, at a cost of
two SHA-256 per transaction. What is not hashed (index columns, running totals) is
derived, and `parktrace verify` checks it.
"""

from __future__ import annotations

from collections.abc import Callable

from . import codec, merkle
from .block import Header, evidence_hash
from .errors import LedgerError
from .precheck import stored_header
from .store import RawBlock, Store
from .verify import Problem, canonical_json


def check_block_bytes(raw: RawBlock, prev_hash: str) -> Header:
    """The header of `raw`, after checking that its stored bytes are what the header and
    `prev_hash` commit to; LedgerError names what differs."""
    header = stored_header(raw)
    if header.prev_hash != prev_hash:
        raise LedgerError(f"prev_hash does not match the hash of block {raw.height - 1}")
    leaves = [merkle.leaf_hash(row.envelope.encode("utf-8")) for row in raw.txs]
    if len(leaves) != header.tx_count or merkle.root_of(leaves).hex() != header.tx_root:
        raise LedgerError("stored transactions do not match the header's tx_root")
    if [row.position for row in raw.txs] != list(range(len(raw.txs))):
        raise LedgerError("transaction positions are not contiguous")
    evidence = canonical_json(raw.evidence, "evidence")
    if not isinstance(evidence, list) or evidence_hash(evidence) != header.evidence_hash:
        raise LedgerError("stored evidence does not match the header's evidence_hash")
    return header


def commit_hash(raw: RawBlock) -> str:
    """The hash of the commit certificate stored with `raw`, as a next header names it."""
    return codec.digest("commit", canonical_json(raw.commit, "commit certificate")).hex()


def check_prefix(
    store: Store,
    genesis_hash: str,
    height: int,
    head_hash: str,
    head_commit_hash: str | None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Problem | None:
    """The first block of 1..`height` whose stored bytes differ from the chain that ends
    at `head_hash` (and whose head certificate hashes to `head_commit_hash`), or None."""
    prev_hash, prev_commit, checked = genesis_hash, None, 0
    for raw in store.raw_blocks(1, height):
        if raw.height != checked + 1:
            return Problem(checked + 1, f"block {checked + 1} is missing")
        try:
            header = check_block_bytes(raw, prev_hash)
            if prev_commit is not None and header.last_commit_hash != prev_commit:
                return Problem(
                    checked, "stored commit certificate differs from the one the chain names"
                )
            prev_hash, prev_commit = header.hash, commit_hash(raw)
        except LedgerError as exc:
            return Problem(raw.height, exc.message)
        except (ValueError, KeyError, TypeError) as exc:
            return Problem(raw.height, f"malformed stored data: {exc}")
        checked = raw.height
        if progress:
            progress(checked, height)
    if checked < height:
        return Problem(checked + 1, f"block {checked + 1} is missing")
    if prev_hash != head_hash:
        return Problem(height, "the stored chain does not end at the checkpoint's head hash")
    if head_commit_hash is not None and prev_commit != head_commit_hash:
        return Problem(height, "stored commit certificate differs from the checkpoint's")
    return None
