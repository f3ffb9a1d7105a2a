"""The resolver key: how a batch key reaches the nodes that check scans, and only them.

A batch key is drawn by whoever issues the batch and never written to the ledger in
clear. The batch record carries it sealed (X25519 sealed box, libsodium) to each
resolver public key the consortium publishes, and a commitment to it, so that a node
holding a resolver private key opens it, checks it against the commitment, and can then
verify serials; the ledger, receipts and exports reveal nothing that mints codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

_COMMITMENT_DOMAIN = b"parktrace/codes/v1/key-commitment\n"


def commitment(batch_key: bytes) -> str:
    """Hex SHA-256 of the domain-tagged key: binds a batch to one key forever."""
    return hashlib.sha256(_COMMITMENT_DOMAIN + batch_key).hexdigest()


def key_id(public: bytes) -> str:
    """A resolver public key's short name (16 hex digits of its SHA-256)."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class ResolverPublicKey:
    public: bytes

    @property
    def id(self) -> str:
        return key_id(self.public)

    def seal(self, batch_key: bytes) -> str:
        return base64.b64encode(SealedBox(PublicKey(self.public)).encrypt(batch_key)).decode()

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "x25519": base64.b64encode(self.public).decode()}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ResolverPublicKey:
        public = base64.b64decode(data["x25519"], validate=True)
        if len(public) != 32 or key_id(public) != data.get("id", key_id(public)):
            raise ValueError("resolver key: expected 32 bytes of X25519 public key and its id")
        return cls(public)


class ResolverKey:
    """A resolver private key, held by the nodes that answer scans."""

    def __init__(self, secret: bytes) -> None:
        self._key = PrivateKey(secret)
        self.public = ResolverPublicKey(bytes(self._key.public_key))

    @property
    def id(self) -> str:
        return self.public.id

    @classmethod
    def generate(cls) -> ResolverKey:
        return cls(bytes(PrivateKey.generate()))

    @classmethod
    def from_seed(cls, seed: bytes) -> ResolverKey:
        """Deterministic, for tests and demos only."""
        return cls(hashlib.sha256(b"parktrace/codes/resolver-seed\n" + seed).digest())

    def open(self, sealed: str, expected_commitment: str) -> bytes | None:
        """The batch key, if `sealed` opens with this key and matches the commitment."""
        try:
            key = SealedBox(self._key).decrypt(base64.b64decode(sealed, validate=True))
        except (CryptoError, ValueError):
            return None
        return key if hmac.compare_digest(commitment(key), expected_commitment) else None

    # -- files -------------------------------------------------------------------------
    def text(self) -> str:
        return f"parktrace-resolver-key-v1 {base64.b64encode(bytes(self._key)).decode()}\n"

    @classmethod
    def from_text(cls, text: str) -> ResolverKey:
        label, _, value = text.strip().partition(" ")
        if label != "parktrace-resolver-key-v1":
            raise ValueError("not a ParkTrace resolver key file")
        secret = base64.b64decode(value.strip(), validate=True)
        if len(secret) != 32:
            raise ValueError("a resolver key has 32 bytes")
        return cls(secret)

    @classmethod
    def load(cls, path: Path) -> ResolverKey:
        return cls.from_text(path.read_text(encoding="ascii"))
