"""The fixed world every simulation runs in: validator keys, genesis, a registry of client
keys and a pool of signed transactions, all derived deterministically.

Ed25519 verification costs ~60 µs and a run verifies the same bytes many times (every node
checks every vote). `MemoKey` remembers verdicts by (signature, message): identical bytes
always verify identically, so this changes no outcome, only the time. The state machine
still calls `verify` for every message it accepts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from functools import cache

from ledger.chain import ChainState
from ledger.crypto import PrivateKey, PublicKey
from ledger.timefmt import format_time, parse_time
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet

CHAIN_ID = "parktrace-sim"
GENESIS_TIME = "2026-01-01T00:00:00.000Z"
GENESIS_HASH = hashlib.sha256(b"parktrace simulator genesis").hexdigest()
TX_POOL_SIZE = 600
TX_TYPE = "sim.note"


@dataclass(frozen=True)
class MemoKey(PublicKey):
    """A public key that remembers its verdicts (see the module docstring)."""

    memo: dict[tuple[bytes, bytes], bool] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def verify(self, signature: bytes, message: bytes) -> bool:
        found = self.memo.get((signature, message))
        if found is None:
            found = super().verify(signature, message)
            self.memo[(signature, message)] = found
        return found


class PooledTx(Transaction):
    """A pool transaction that remembers its canonical bytes: the pool is built once and
    shared by every run, and each node hashes each transaction several times."""

    def canonical(self) -> bytes:
        cached = self.__dict__.get("_canonical")
        if cached is None:
            cached = super().canonical()
            object.__setattr__(self, "_canonical", cached)
        return cached


def _seed(label: str, index: int) -> bytes:
    return hashlib.sha256(f"parktrace-sim/{label}/{index}".encode()).digest()


@cache
def validator_key(index: int) -> PrivateKey:
    return PrivateKey.from_seed(_seed("validator", index))


def validator_id(index: int) -> str:
    return f"v{index}"


def validator_set(n: int) -> ValidatorSet:
    """A fresh set with fresh memo tables (one per simulation: memory stays bounded)."""
    members = []
    for i in range(n):
        public = validator_key(i).public_key
        members.append(Validator(validator_id(i), MemoKey(public.scheme, public.key), f"org{i}"))
    return ValidatorSet(tuple(members))


def genesis(n: int) -> ChainState:
    return ChainState(CHAIN_ID, GENESIS_HASH, GENESIS_TIME, validator_set(n))


@cache
def client_keys() -> tuple[PrivateKey, ...]:
    return tuple(PrivateKey.from_seed(_seed("client", i)) for i in range(3))


@cache
def registry() -> dict[str, PublicKey]:
    """Signer fingerprint -> key: the only transaction signers the simulated chain accepts."""
    keys = {}
    for key in client_keys():
        public = key.public_key
        keys[public.fingerprint] = MemoKey(public.scheme, public.key)
    return keys


@cache
def tx_pool() -> tuple[PooledTx, ...]:
    """Every transaction the simulated clients will ever submit, in submission order."""
    txs = []
    for i in range(TX_POOL_SIZE):
        key = client_keys()[i % len(client_keys())]
        txs.append(
            PooledTx.create(
                key,
                chain_id=CHAIN_ID,
                type=TX_TYPE,
                payload={"seq": i},
                signer=key.public_key.fingerprint,
                timestamp=GENESIS_TIME,
                nonce=i.to_bytes(16, "big"),
            )
        )
    return tuple(txs)


_EPOCH = parse_time(GENESIS_TIME)


def block_time(now: float, head_time: str) -> str:
    """Virtual seconds since genesis as a header time, strictly after the previous block."""
    moment = _EPOCH + timedelta(milliseconds=int(now * 1000))
    floor = parse_time(head_time) + timedelta(milliseconds=1)
    return format_time(max(moment, floor).astimezone(UTC))
