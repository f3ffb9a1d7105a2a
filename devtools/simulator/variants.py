"""Deliberately broken variants of the consensus machine, to prove the simulator catches
real bugs. Only the tests and bench/ use them; no node ever runs one."""

from __future__ import annotations

from ledger.block import Block
from nodes.consensus import ConsensusState


class IgnoresLock(ConsensusState):
    """Prevotes any valid proposal, ignoring its lock (lines 23 and 29 without the lock)."""

    def _may_prevote(self, block: Block, pol_round: int) -> bool:
        return True


class ForgetsSignState(ConsensusState):
    """Restarts as if it had never signed anything at this height (no persisted state)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs["sign_state"] = None
        super().__init__(*args, **kwargs)


VARIANTS: dict[str, type[ConsensusState]] = {
    "correct": ConsensusState,
    "ignores_lock": IgnoresLock,
    "forgets_sign_state": ForgetsSignState,
}
