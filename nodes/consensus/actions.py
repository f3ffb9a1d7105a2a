"""What the consensus machine asks its host to do. See `state_machine` for the contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.block import Block, CommitCertificate

from .messages import Message
from .signstate import SignState
from .step import Step


@dataclass(frozen=True)
class Timeout:
    """A timer the host hands back through `on_timeout` once its delay has passed."""

    height: int
    round: int
    step: Step


@dataclass(frozen=True)
class Broadcast:
    """Send to every other validator (the machine has already counted its own message)."""

    message: Message


@dataclass(frozen=True)
class ScheduleTimeout:
    """Call `on_timeout(self.timeout)` after `delay` seconds. Never needs cancelling: the
    machine ignores timeouts of a height, round or step it has left."""

    height: int
    round: int
    step: Step
    delay: float

    @property
    def timeout(self) -> Timeout:
        return Timeout(self.height, self.round, self.step)


@dataclass(frozen=True)
class Commit:
    """`block` is decided. Always the last action of its batch."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class RecordEvidence:
    """Keep this evidence record and put it in a block this node proposes."""

    record: dict[str, Any]


@dataclass(frozen=True)
class RequestProposal:
    """This node proposes at (height, round): build a block, give it to `on_proposal_value`."""

    height: int
    round: int


@dataclass(frozen=True)
class PersistSignState:
    """Write `state` durably before executing any later action of the same batch."""

    state: SignState


Action = Broadcast | ScheduleTimeout | Commit | RecordEvidence | RequestProposal | PersistSignState
