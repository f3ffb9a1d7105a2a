"""Committed evidence of misbehaviour: which validator signed two conflicting votes, at
which height, round and step, for which two blocks, and in which block the consortium
recorded it. Read from the blocks' `evidence` column (only blocks that carry any) and
re-checked here, so the listing is itself a check.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import LedgerError
from ledger.evidence import DuplicateVote
from ledger.genesis import Genesis
from ledger.membership import Membership
from ledger.store import Store
from ledger.store.models import BlockRow
from traceability.errors import NotFoundError

MAX_LISTED = 1000


def _records(store: Store) -> list[tuple[int, str, dict[str, Any]]]:
    """(committed at height, block time, record) for every stored evidence record."""
    with Session(store.engine) as session:
        rows = session.execute(
            select(BlockRow.height, BlockRow.time, BlockRow.evidence)
            .where(BlockRow.evidence != "[]")
            .order_by(BlockRow.height)
        ).all()
    found = []
    for height, time, text in rows:
        for record in json.loads(text):
            found.append((height, time, record))
    return found


def _summary(
    height: int, time: str, record: dict[str, Any], membership: Membership, genesis: Genesis
) -> dict[str, Any]:
    try:
        evidence = DuplicateVote.from_json(record)
    except LedgerError as exc:
        return {"committed_at": height, "valid": False, "problem": exc.message}
    a, b = evidence.vote_a, evidence.vote_b
    validator = next(
        (v for v in (*membership.validators.validators, *genesis.validator_set().validators)
         if v.id == a.validator),
        None,
    )  # fmt: skip
    problem = None
    try:
        sets = [membership.validators, genesis.validator_set()]
        usable = next((s for s in sets if any(v.id == a.validator for v in s.validators)), None)
        if usable is None:
            raise LedgerError(f"{a.validator} is in neither the current nor the genesis set")
        evidence.check(usable, chain_id=genesis.chain_id)
    except LedgerError as exc:
        problem = exc.message
    return {
        "key": evidence.key,
        "kind": "duplicate_vote",
        "validator": a.validator,
        "organization": validator.org if validator else None,
        "height": a.height,
        "round": a.round,
        "step": a.type,
        "block_hashes": [a.block_hash, b.block_hash],
        "committed_at": height,
        "committed_time": time,
        "valid": problem is None,
        "problem": problem,
    }


def list_evidence(store: Store, membership: Membership, genesis: Genesis) -> dict[str, Any]:
    items = [_summary(h, t, r, membership, genesis) for h, t, r in _records(store)]
    return {"count": len(items), "evidence": items[:MAX_LISTED]}


def evidence_detail(
    store: Store, membership: Membership, genesis: Genesis, key: str
) -> dict[str, Any]:
    """One record by its key (`duplicate_vote/<validator>/<height>/<round>/<step>`), with
    both signed votes as recorded."""
    for height, time, record in _records(store):
        summary = _summary(height, time, record, membership, genesis)
        if summary.get("key") == key:
            return {**summary, "votes": [record.get("vote_a"), record.get("vote_b")]}
    raise NotFoundError(f"no committed evidence {key!r} on this node")
