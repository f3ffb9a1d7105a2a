"""BFT consensus (Tendermint, Algorithm 1) as a pure state machine; see `state_machine`.

Modules, one job each: `messages` (signed proposals, votes, decisions and their strict wire
form), `height_log` (what was accepted at this height, and the counts the rules need),
`state_machine` (the rules), `actions` (what the host is asked to do), `signstate` (what a
validator persists so a restart never equivocates), `evidence` (conflicting votes, pooled
until committed), `config` (timeouts and bounds), `step` (the steps of a round).
"""

from .actions import (
    Action,
    Broadcast,
    Commit,
    PersistSignState,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
)
from .config import Config
from .evidence import CommittedEvidence, EvidencePool, conflict
from .messages import (
    Decision,
    Evidence,
    Message,
    MessageError,
    Proposal,
    decode,
    encode,
    parse,
)
from .signstate import SignState
from .state_machine import ConsensusState, SignStateError
from .step import Step

__all__ = [
    "Action",
    "Broadcast",
    "Commit",
    "CommittedEvidence",
    "Config",
    "ConsensusState",
    "Decision",
    "Evidence",
    "EvidencePool",
    "Message",
    "MessageError",
    "PersistSignState",
    "Proposal",
    "RecordEvidence",
    "RequestProposal",
    "ScheduleTimeout",
    "SignState",
    "SignStateError",
    "Step",
    "Timeout",
    "conflict",
    "decode",
    "encode",
    "parse",
]
