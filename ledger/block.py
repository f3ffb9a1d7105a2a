"""Blocks, votes and commit certificates.

A block is a header, its transactions, the misbehaviour evidence it records, and the
commit certificate of the previous block (`last_commit`). The header hash-chains the
ledger: it names the previous block, the RFC 6962 root of this block's transactions,
the root and size of the whole-ledger transaction log after this block, the validator
set, and the hash of the previous commit. Following Tendermint, block h+1 carries the
canonical certificate of block h, so every node ends up storing the same certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import codec, merkle
from .crypto import PrivateKey
from .errors import BlockError, SchemaError, SignatureError
from .timefmt import parse_time
from .tx import Transaction, require_keys
from .validators import ValidatorSet

VoteType = Literal["prevote", "precommit"]
HEADER_FIELDS = (
    "chain_id",
    "height",
    "time",
    "prev_hash",
    "tx_root",
    "tx_count",
    "log_root",
    "log_size",
    "validators_hash",
    "last_commit_hash",
    "evidence_hash",
    "proposer",
)


#: Heights, rounds and sizes stay within what canonical JSON represents exactly.
MAX_INT = 2**53 - 1


def _int(obj: dict[str, Any], key: str, what: str, minimum: int = 0) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_INT:
        raise SchemaError(f"{what}.{key}: expected an integer from {minimum} to {MAX_INT}")
    return value


def _hex(obj: dict[str, Any], key: str, what: str, nullable: bool = False) -> str | None:
    value = obj[key]
    if value is None and nullable:
        return None
    codec.hexdecode(value, field=f"{what}.{key}", size=32)
    return value


@dataclass(frozen=True)
class Vote:
    """A prevote or precommit. `block_hash` None is a vote for nil."""

    chain_id: str
    height: int
    round: int
    type: VoteType
    block_hash: str | None
    validator: str
    signature: bytes = b""

    def sign_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "type": self.type,
            "block_hash": self.block_hash,
            "validator": self.validator,
        }

    def signing_bytes(self) -> bytes:
        cached = self.__dict__.get("_signing")
        if cached is None:
            cached = codec.domain_bytes("vote", self.sign_body())
            object.__setattr__(self, "_signing", cached)
        return cached

    def signed(self, key: PrivateKey) -> Vote:
        return Vote(**{**self.sign_body(), "signature": key.sign(self.signing_bytes())})

    def verify(self, validators: ValidatorSet) -> None:
        member = validators.get(self.validator)
        if member is None:
            raise SignatureError(f"vote from {self.validator!r}, which is not a validator")
        member.public_key.require(self.signature, self.signing_bytes(), f"vote of {self.validator}")

    def to_json(self) -> dict[str, Any]:
        return {**self.sign_body(), "signature": codec.b64encode(self.signature)}

    @classmethod
    def from_json(cls, data: Any) -> Vote:
        keys = ("chain_id", "height", "round", "type", "block_hash", "validator", "signature")
        obj = require_keys(data, keys, "vote")
        if obj["type"] not in ("prevote", "precommit"):
            raise SchemaError(f"vote.type: expected prevote or precommit, got {obj['type']!r}")
        if not isinstance(obj["chain_id"], str) or not isinstance(obj["validator"], str):
            raise SchemaError("vote: chain_id and validator must be strings")
        return cls(
            obj["chain_id"],
            _int(obj, "height", "vote", 1),
            _int(obj, "round", "vote"),
            obj["type"],
            _hex(obj, "block_hash", "vote", nullable=True),
            obj["validator"],
            codec.b64decode(obj["signature"], field="vote.signature"),
        )


@dataclass(frozen=True)
class CommitCertificate:
    """Precommits of more than two thirds of the validators for one block hash."""

    chain_id: str
    height: int
    round: int
    block_hash: str
    signatures: tuple[tuple[str, bytes], ...]  # (validator id, signature), sorted by id

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> CommitCertificate:
        first = votes[0]
        assert first.block_hash is not None
        sigs = tuple(sorted((v.validator, v.signature) for v in votes))
        return cls(first.chain_id, first.height, first.round, first.block_hash, sigs)

    def votes(self) -> list[Vote]:
        return [
            Vote(self.chain_id, self.height, self.round, "precommit", self.block_hash, vid, sig)
            for vid, sig in self.signatures
        ]

    def verify(
        self, validators: ValidatorSet, *, chain_id: str, height: int, block_hash: str
    ) -> None:
        """Raise unless this certifies `block_hash` at `height` with a quorum of valid votes."""
        where = f"commit certificate of height {height}"
        if self.chain_id != chain_id or self.height != height or self.block_hash != block_hash:
            raise BlockError(f"{where} is for another block")
        ids = [vid for vid, _ in self.signatures]
        if ids != sorted(set(ids)):
            raise BlockError(f"{where} repeats a validator or is not sorted")
        if len(ids) < validators.quorum:
            raise BlockError(f"{where} has {len(ids)} signatures; a quorum is {validators.quorum}")
        for vote in self.votes():
            try:
                vote.verify(validators)
            except SignatureError as exc:
                raise BlockError(f"{where}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "signatures": [
                {"validator": vid, "signature": codec.b64encode(sig)}
                for vid, sig in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> CommitCertificate:
        obj = require_keys(
            data, ("chain_id", "height", "round", "block_hash", "signatures"), "commit"
        )
        if not isinstance(obj["signatures"], list):
            raise SchemaError("commit.signatures: expected a list")
        sigs = []
        for item in obj["signatures"]:
            entry = require_keys(item, ("validator", "signature"), "commit.signatures[]")
            if not isinstance(entry["validator"], str):
                raise SchemaError("commit.signatures[].validator: expected a string")
            sigs.append(
                (entry["validator"], codec.b64decode(entry["signature"], field="commit signature"))
            )
        block_hash = _hex(obj, "block_hash", "commit")
        assert block_hash is not None
        if not isinstance(obj["chain_id"], str):
            raise SchemaError("commit.chain_id: expected a string")
        return cls(
            obj["chain_id"],
            _int(obj, "height", "commit", 1),
            _int(obj, "round", "commit"),
            block_hash,
            tuple(sigs),
        )

    def hash(self) -> str:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = codec.digest("commit", self.to_json()).hex()
            object.__setattr__(self, "_hash", cached)
        return cached


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    time: str
    prev_hash: str
    tx_root: str
    tx_count: int
    log_root: str
    log_size: int
    validators_hash: str
    last_commit_hash: str | None
    evidence_hash: str
    proposer: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HEADER_FIELDS}

    @classmethod
    def from_json(cls, data: Any) -> Header:
        obj = require_keys(data, HEADER_FIELDS, "header")
        for key in ("chain_id", "proposer"):
            if not isinstance(obj[key], str):
                raise SchemaError(f"header.{key}: expected a string")
        parse_time(obj["time"], "header.time")
        for key in ("prev_hash", "tx_root", "log_root", "validators_hash", "evidence_hash"):
            _hex(obj, key, "header")
        _hex(obj, "last_commit_hash", "header", nullable=True)
        _int(obj, "height", "header", 1)
        _int(obj, "tx_count", "header")
        _int(obj, "log_size", "header")
        return cls(**obj)

    @property
    def hash(self) -> str:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = codec.digest("block", self.to_json()).hex()
            object.__setattr__(self, "_hash", cached)
        return cached


def evidence_hash(evidence: list[dict[str, Any]]) -> str:
    return codec.digest("evidence", evidence).hex()


def tx_root(txs: list[Transaction]) -> str:
    return merkle.root_of([tx.leaf_hash() for tx in txs]).hex()


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[Transaction, ...]
    evidence: tuple[dict[str, Any], ...] = ()
    last_commit: CommitCertificate | None = None

    @property
    def hash(self) -> str:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def check_body(self) -> None:
        """The header commits to this body: tx root and count, evidence, last commit."""
        h = self.header
        where = f"block {h.height}"
        if h.tx_count != len(self.txs):
            raise BlockError(f"{where}: header says {h.tx_count} txs, body has {len(self.txs)}")
        if tx_root(list(self.txs)) != h.tx_root:
            raise BlockError(f"{where}: transactions do not match the header's tx_root")
        if evidence_hash(list(self.evidence)) != h.evidence_hash:
            raise BlockError(f"{where}: evidence does not match the header's evidence_hash")
        last = self.last_commit.hash() if self.last_commit else None
        if last != h.last_commit_hash:
            raise BlockError(f"{where}: last commit does not match the header's last_commit_hash")

    def to_json(self) -> dict[str, Any]:
        """The wire form peers exchange. Each transaction travels as its canonical text: a
        receiver that already holds it (gossiped earlier) finds it by those bytes instead
        of parsing and re-encoding it, and any other is parsed strictly from them."""
        return {
            "header": self.header.to_json(),
            "txs": [tx.canonical().decode("utf-8") for tx in self.txs],
            "evidence": list(self.evidence),
            "last_commit": self.last_commit.to_json() if self.last_commit else None,
        }

    @classmethod
    def from_json(cls, data: Any, known: KnownTxs | None = None) -> Block:
        """Strictly parse the wire form. `known` maps canonical envelope bytes to a
        transaction the caller holds already (its mempool); the bytes being identical, it
        is the transaction those bytes would parse to."""
        obj = require_keys(data, ("header", "txs", "evidence", "last_commit"), "block")
        if not isinstance(obj["txs"], list) or not isinstance(obj["evidence"], list):
            raise SchemaError("block: txs and evidence must be lists")
        if not all(isinstance(record, dict) for record in obj["evidence"]):
            raise SchemaError("block.evidence: every record must be an object")
        last = obj["last_commit"]
        return cls(
            Header.from_json(obj["header"]),
            tuple(_tx_of(text, known, i) for i, text in enumerate(obj["txs"])),
            tuple(obj["evidence"]),
            CommitCertificate.from_json(last) if last is not None else None,
        )


#: Canonical envelope bytes -> the transaction they encode, for those a node holds.
KnownTxs = Callable[[bytes], Transaction | None]


def _tx_of(text: Any, known: KnownTxs | None, index: int) -> Transaction:
    if isinstance(text, dict):  # the envelope as an object, as files written before hold it
        return Transaction.from_json(text)
    return tx_from_text(text, known, f"block.txs[{index}]")


def tx_from_text(text: Any, known: KnownTxs | None, where: str) -> Transaction:
    """A transaction sent as its canonical text (in a block or gossip): the one `known`
    holds for those bytes, else parsed strictly from them."""
    if not isinstance(text, str):
        raise SchemaError(f"{where}: expected a transaction's canonical JSON text")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SchemaError(f"{where}: not UTF-8 text") from exc
    held = known(raw) if known is not None else None
    return held if held is not None else Transaction.from_canonical(raw)
