"""The transaction rules of a block, shared by every place that judges transactions:
the mempool on admission, the proposer choosing what to include, every validator
checking a proposal, and the verifier replaying the chain. One function, one verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .errors import DuplicateError, LedgerError
from .membership import Membership
from .tallies import Tally
from .tx import Transaction

#: Given candidate ids, the ones already committed on the chain.
KnownIds = Callable[[list[str]], set[str]]


class BlockRules(Protocol):
    """The rules above the chain's own (the domain's: what an event, a recall or a code
    issuance must be) while one block is judged, transaction by transaction, in order."""

    def check(self, tx: Transaction, membership: Membership) -> None:
        """Raise a LedgerError if `tx` may not come next (changes nothing)."""

    def apply(self, tx: Transaction) -> None:
        """Take `tx`, already checked, into the block's state."""

    def result(self) -> DomainRules:
        """The domain's state after the block."""

    def tallies(self) -> list[Tally]:
        """The running-total rows the block's transactions add (ledger.tallies), which
        the store writes with the block and the verifier compares with what it stored."""


class DomainRules(Protocol):
    """The domain's state after some block: an immutable value, like `Membership`.
    The node builds it (traceability.validity); the ledger only threads it through."""

    def begin(self, height: int, time: str | None = None) -> BlockRules:
        """Start judging block `height`, stamped `time` when known (a proposal, a stored
        block; admission passes the node's clock). Never changes this value."""


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
    rules: BlockRules | None = None,
) -> Membership:
    """All-or-nothing: raise the first problem of any transaction of block `height`;
    return the membership after the block. Membership changes apply in order, so a
    later transaction of the same block is judged by the earlier ones' effects.

    `rules`: the domain's rules for this block, taken forward transaction by
    transaction like the membership; its `result()` is the state after. None judges the
    chain's own rules only."""
    txs = list(txs)
    _raise_duplicates(txs, known)
    for position, tx in enumerate(txs):
        try:
            membership.check_tx(tx, height, time)
            if rules is not None:
                rules.check(tx, membership)
        except LedgerError as exc:
            raise _at(exc, f"transaction {position} ({tx.id[:16]}…)") from None
        membership = membership.apply(tx, height)
        if rules is not None:
            rules.apply(tx)
    return membership


def select_txs(
    candidates: Iterable[Transaction],
    membership: Membership,
    *,
    height: int,
    time: str,
    known: KnownIds,
    rules: BlockRules | None = None,
) -> tuple[list[Transaction], list[Rejected], Membership]:
    """The proposer's side: keep what may go into block `height`, say why the rest may not.
    `rules` as for `check_txs`: only the chosen transactions are applied to it."""
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
            if rules is not None:
                rules.check(tx, membership)
            after = membership.apply(tx, height)
        except LedgerError as exc:
            rejected.append(Rejected(tx, exc))
            continue
        membership = after
        if rules is not None:
            rules.apply(tx)
        chosen.append(tx)
        seen.add(tx.id)
    return chosen, rejected, membership


def _at(exc: LedgerError, where: str) -> LedgerError:
    """The same refusal (its type and details kept), its message saying where it is."""
    exc.message = f"{where}: {exc.message}"
    exc.args = (exc.message,)
    return exc


def _raise_duplicates(txs: list[Transaction], known: KnownIds) -> None:
    ids = [tx.id for tx in txs]
    if len(set(ids)) != len(ids):
        raise DuplicateError("the block holds the same transaction twice")
    again = known(ids)
    if again:
        raise DuplicateError(f"transaction {sorted(again)[0]} is already committed")
