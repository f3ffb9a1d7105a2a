"""Tunable parameters of the consensus machine."""

from __future__ import annotations

from dataclasses import dataclass

from .step import Step


@dataclass(frozen=True)
class Config:
    """Timeouts grow linearly with the round (base + round * delta), so that after the network
    stabilises some round is long enough for every honest message to arrive in time.

    The bounds keep a Byzantine peer from growing a node's memory without limit.
    """

    timeout_propose: float = 3.0
    timeout_propose_delta: float = 0.5
    timeout_prevote: float = 1.0
    timeout_prevote_delta: float = 0.5
    timeout_precommit: float = 1.0
    timeout_precommit_delta: float = 0.5
    #: How far (seconds) a fresh proposal's time may be ahead of the host's clock for the
    #: host to prevote it (proposer-based timestamps): the most a fast clock can carry the
    #: chain's time ahead of the honest validators' clocks.
    max_time_ahead: float = 5.0
    #: Messages more rounds ahead than this are dropped outright.
    max_round_ahead: int = 1000
    #: Distinct proposals kept per round (an honest proposer sends one).
    max_proposals_per_round: int = 2
    #: Messages of the next height kept per sender until this node gets there.
    max_future_per_sender: int = 8
    #: Evidence records one block may carry.
    max_block_evidence: int = 64

    def timeout(self, step: Step, round_: int) -> float:
        if step is Step.PROPOSE:
            return self.timeout_propose + round_ * self.timeout_propose_delta
        if step is Step.PREVOTE:
            return self.timeout_prevote + round_ * self.timeout_prevote_delta
        if step is Step.PRECOMMIT:
            return self.timeout_precommit + round_ * self.timeout_precommit_delta
        raise ValueError(f"no timeout for step {step.label}")
