"""Consensus messages: proposals, votes and decisions, and their strict wire form.

A `Proposal` carries the whole block, but its signature covers only the block hash (the
header commits to the body, and the receiver checks that it does), so re-proposing the same
block in a later round signs the same 32 bytes of identity.

An `Evidence` message gossips an evidence record (two conflicting votes), so that whoever
proposes next can commit it even if it never saw both votes itself.

A `Decision` is a committed block with its commit certificate. It needs no signature of its
own: the certificate is 2f+1 signed precommits. A node that fell behind by one height uses
it to decide without having seen the round's proposal (the runtime's catch-up feeds them).

Everything that arrives from a peer goes through `decode`/`parse`, which either returns a
well-typed message or raises a `LedgerError` subclass; garbage never reaches the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from ledger import codec
from ledger.block import Block, CommitCertificate, KnownTxs, Vote
from ledger.errors import LedgerError, SignatureError
from ledger.evidence import DuplicateVote
from ledger.tx import require_keys
from ledger.validators import ValidatorSet

#: Rounds above this are malformed; a real round never gets near it (timeouts grow).
MAX_ROUND = 2**31 - 1
#: The largest integer canonical JSON represents exactly.
MAX_HEIGHT = 2**53 - 1
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
PROPOSAL_FIELDS = ("chain_id", "height", "round", "pol_round", "block", "proposer", "signature")


def signing_bytes(message: Proposal | Vote) -> bytes:
    """The signed bytes of a message, remembered on the (frozen) object: a message that is
    checked more than once, or by several nodes sharing it, is encoded once."""
    cached = message.__dict__.get("_signing_bytes")
    if cached is None:
        cached = message.signing_bytes()
        object.__setattr__(message, "_signing_bytes", cached)
    return cached


def verify_signature(message: Proposal | Vote, validators: ValidatorSet) -> bool:
    """Whether the validator the message names signed exactly these bytes. A message whose
    fields have no canonical encoding (e.g. a huge integer) was never signed: False."""
    signer = message.proposer if isinstance(message, Proposal) else message.validator
    member = validators.get(signer)
    if member is None:
        return False
    try:
        signed = signing_bytes(message)
    except LedgerError:
        return False
    return member.public_key.verify(message.signature, signed)


class Signer(Protocol):
    """What the machine needs of a key: sign bytes (a guard or an HSM may sit behind it)."""

    def sign(self, message: bytes) -> bytes: ...


class MessageError(LedgerError):
    """A peer message that is not well formed."""

    code = "bad_message"


class MessageTooLarge(MessageError):
    code = "message_too_large"


def _int(obj: dict[str, Any], key: str, lo: int, hi: int = MAX_ROUND) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise MessageError(f"{key}: expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise MessageError(f"{key}: expected a string")
    return value


@dataclass(frozen=True)
class Proposal:
    """The round's proposer offers `block`; `pol_round` >= 0 claims a proof of lock there."""

    chain_id: str
    height: int
    round: int
    pol_round: int
    block: Block
    proposer: str
    signature: bytes = b""

    def sign_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "pol_round": self.pol_round,
            "block_hash": self.block.hash,
            "proposer": self.proposer,
        }

    def signing_bytes(self) -> bytes:
        return codec.domain_bytes("proposal", self.sign_body())

    def signed(self, key: Signer) -> Proposal:
        return Proposal(
            self.chain_id,
            self.height,
            self.round,
            self.pol_round,
            self.block,
            self.proposer,
            key.sign(self.signing_bytes()),
        )

    def verify(self, validators: ValidatorSet) -> None:
        """Raise SignatureError unless a member of `validators` named `proposer` signed it."""
        member = validators.get(self.proposer)
        if member is None:
            raise SignatureError(f"proposal from {self.proposer!r}, which is not a validator")
        member.public_key.require(self.signature, self.signing_bytes(), "proposal signature")

    def to_json(self, *, block_by_hash: bool = False) -> dict[str, Any]:
        """The wire form; `block_by_hash` names the block by its hash instead (the sign
        state stores blocks apart)."""
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "pol_round": self.pol_round,
            "block": self.block.hash if block_by_hash else self.block.to_json(),
            "proposer": self.proposer,
            "signature": codec.b64encode(self.signature),
        }

    @classmethod
    def from_json(cls, data: Any, known: KnownTxs | None = None) -> Proposal:
        obj = require_keys(data, PROPOSAL_FIELDS, "proposal")
        round_ = _int(obj, "round", 0)
        return cls(
            _str(obj, "chain_id"),
            _int(obj, "height", 1, MAX_HEIGHT),
            round_,
            _int(obj, "pol_round", -1, round_ - 1),
            _block(obj["block"], known),
            _str(obj, "proposer"),
            codec.b64decode(obj["signature"], field="proposal.signature"),
        )


@dataclass(frozen=True)
class Decision:
    """A committed block and the precommits that commit it."""

    block: Block
    certificate: CommitCertificate

    @property
    def height(self) -> int:
        return self.block.height

    def to_json(self) -> dict[str, Any]:
        return {"block": self.block.to_json(), "certificate": self.certificate.to_json()}

    @classmethod
    def from_json(cls, data: Any, known: KnownTxs | None = None) -> Decision:
        obj = require_keys(data, ("block", "certificate"), "decision")
        return cls(_block(obj["block"], known), CommitCertificate.from_json(obj["certificate"]))


@dataclass(frozen=True)
class Evidence:
    """An evidence record in gossip (see ledger.evidence); checked by the receiver."""

    record: dict[str, Any]

    @property
    def height(self) -> int:
        """The height of the offence (every message type has a `height`)."""
        return int(self.record["vote_a"]["height"])

    def to_json(self) -> dict[str, Any]:
        return self.record

    @classmethod
    def from_json(cls, data: Any) -> Evidence:
        DuplicateVote.from_json(data)  # well formed; signatures are the receiver's to check
        return cls(data)


Message = Proposal | Vote | Decision | Evidence
KINDS: dict[str, type[Proposal] | type[Vote] | type[Decision] | type[Evidence]] = {
    "proposal": Proposal,
    "vote": Vote,
    "decision": Decision,
    "evidence": Evidence,
}


def _block(data: Any, known: KnownTxs | None) -> Block:
    block = Block.from_json(data, known)
    if not all(isinstance(record, dict) for record in block.evidence):
        raise MessageError("block.evidence: every record must be an object")
    return block


def kind_of(message: Message) -> str:
    if isinstance(message, Proposal):
        return "proposal"
    if isinstance(message, Vote):
        return "vote"
    if isinstance(message, Evidence):
        return "evidence"
    return "decision"


def encode(message: Message) -> dict[str, Any]:
    """The wire form: {"kind": ..., "body": ...}."""
    return {"kind": kind_of(message), "body": message.to_json()}


def decode(data: Any, known: KnownTxs | None = None) -> Message:
    """Strictly decode untrusted JSON into a message, or raise a LedgerError subclass.
    `known`: the transactions the receiver holds, by canonical bytes (`Block.from_json`)."""
    obj = require_keys(data, ("kind", "body"), "message")
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise MessageError(f"message.kind: expected one of {sorted(KINDS)}, got {kind!r}")
    try:
        body = obj["body"]
        if kind == "proposal":
            message: Message = Proposal.from_json(body, known)
        elif kind == "decision":
            message = Decision.from_json(body, known)
        else:
            message = KINDS[kind].from_json(body)
    except LedgerError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # The ledger parsers are strict, but a hostile peer should never find a crash path.
        raise MessageError(f"{kind}: malformed ({type(exc).__name__}: {exc})") from exc
    if isinstance(message, Vote) and (message.round > MAX_ROUND or message.height > MAX_HEIGHT):
        raise MessageError(f"vote: round above {MAX_ROUND} or height above {MAX_HEIGHT}")
    return message


def parse(raw: bytes | str) -> Message:
    """Decode the bytes of one peer message."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MessageError(f"message is not valid JSON: {exc}") from exc
    return decode(data)


def serialize(message: Message) -> bytes:
    return codec.canonical(encode(message))


__all__ = [
    "KINDS",
    "MAX_ROUND",
    "Decision",
    "Evidence",
    "Message",
    "MessageError",
    "MessageTooLarge",
    "Proposal",
    "Signer",
    "decode",
    "encode",
    "kind_of",
    "parse",
    "serialize",
    "signing_bytes",
    "verify_signature",
]
