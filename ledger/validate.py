"""The transaction rules of a block, shared by every place that judges transactions:
the mempool on admission, the proposer choosing what to include, every validator
checking a proposal, and the verifier replaying the chain. One function, one verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import DuplicateError, LedgerError
from .membership import Membership
from .tx import Transaction

if TYPE_CHECKING:
    from .recall import RecallBlock

#: Given candidate ids, the ones already committed on the chain.
KnownIds = Callable[[list[str]], set[str]]


@dataclass(frozen=True)
class Rejected:
    tx: Transaction
    reason: LedgerError


def check_txs(
    txs: Iterable[Transaction],
    membership: Membership,
    *,
    height: int,
    time: str,
    known: KnownIds,
    recalls: RecallBlock | None = None,
) -> Membership:
    """All-or-nothing: raise the first problem of any transaction of block `height`;
    return the membership after the block. Membership changes apply in order, so a
    later transaction of the same block is judged by the earlier ones' effects.

    `recalls` (ledger.recall): the recall rule's state for this block, taken forward
    transaction by transaction like the membership; its `result()` is the state after."""
    txs = list(txs)
    _raise_duplicates(txs, known)
    for position, tx in enumerate(txs):
        try:
            membership.check_tx(tx, height, time)
            if recalls is not None:
                recalls.check(tx)
        except LedgerError as exc:
            raise type(exc)(f"transaction {position} ({tx.id[:16]}…): {exc.message}") from exc
        membership = membership.apply(tx, height)
        if recalls is not None:
            recalls.apply(tx)
    return membership


def select_txs(
    candidates: Iterable[Transaction],
    membership: Membership,
    *,
    height: int,
    time: str,
    known: KnownIds,
    recalls: RecallBlock | None = None,
) -> tuple[list[Transaction], list[Rejected], Membership]:
    """The proposer's side: keep what may go into block `height`, say why the rest may not.
    `recalls` as for `check_txs`: only the chosen transactions are applied to it."""
    candidates = list(candidates)
    committed = known([tx.id for tx in candidates])
    chosen: list[Transaction] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for tx in candidates:
        if tx.id in committed or tx.id in seen:
            rejected.append(
                Rejected(tx, DuplicateError(f"transaction {tx.id} is already committed"))
            )
            continue
        try:
            membership.check_tx(tx, height, time)
            if recalls is not None:
                recalls.check(tx)
            after = membership.apply(tx, height)
        except LedgerError as exc:
            rejected.append(Rejected(tx, exc))
            continue
        membership = after
        if recalls is not None:
            recalls.apply(tx)
        chosen.append(tx)
        seen.add(tx.id)
    return chosen, rejected, membership


def _raise_duplicates(txs: list[Transaction], known: KnownIds) -> None:
    ids = [tx.id for tx in txs]
    if len(set(ids)) != len(ids):
        raise DuplicateError("the block holds the same transaction twice")
    again = known(ids)
    if again:
        raise DuplicateError(f"transaction {sorted(again)[0]} is already committed")
