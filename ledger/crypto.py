"""Keys and signatures. Every signature names its scheme, so a chain can later add
ECDSA P-256 or SM2 without changing what an old signature means.

Ed25519 is the default. Signing goes through `cryptography`. Verification, the hot path
(every node verifies every transaction and vote), goes through libsodium (PyNaCl), about
twice as fast; both backends sit behind `ed25519_rules`, so they accept exactly the same
inputs (tests/test_crypto.py proves it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import ed25519_rules
from .codec import b64decode, b64encode
from .errors import EncodingError, SchemeError, SignatureError

DEFAULT_SCHEME = "ed25519"


class Scheme(Protocol):
    name: str

    def check_public_key(self, key: bytes) -> str | None: ...

    def verify(self, key: bytes, signature: bytes, message: bytes) -> bool: ...


def _verify_openssl(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _verify_libsodium(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Ed25519:
    """Ed25519 (RFC 8032) with the strict acceptance rule of `ed25519_rules`."""

    name: str = "ed25519"
    backend: Callable[[bytes, bytes, bytes], bool] = _verify_libsodium

    def check_public_key(self, key: bytes) -> str | None:
        return ed25519_rules.check_public_key(key)

    def verify(self, key: bytes, signature: bytes, message: bytes) -> bool:
        if ed25519_rules.check_public_key(key) or ed25519_rules.check_signature(signature):
            return False
        return self.backend(key, signature, message)


ED25519 = Ed25519()
ED25519_OPENSSL = Ed25519(backend=_verify_openssl)

#: Schemes a chain may name. Adding one is adding an entry here (and to genesis policy).
SCHEMES: dict[str, Scheme] = {ED25519.name: ED25519}


def scheme(name: Any) -> Scheme:
    if not isinstance(name, str) or name not in SCHEMES:
        raise SchemeError(f"unknown signature scheme {name!r}; accepted: {sorted(SCHEMES)}")
    return SCHEMES[name]


@dataclass(frozen=True)
class PublicKey:
    scheme: str
    key: bytes

    def __post_init__(self) -> None:
        problem = scheme(self.scheme).check_public_key(self.key)
        if problem:
            raise EncodingError(problem)

    def verify(self, signature: bytes, message: bytes) -> bool:
        return SCHEMES[self.scheme].verify(self.key, signature, message)

    def require(self, signature: bytes, message: bytes, what: str = "signature") -> None:
        if not self.verify(signature, message):
            raise SignatureError(f"{what} does not verify with the signer's {self.scheme} key")

    def to_json(self) -> dict[str, str]:
        return {"scheme": self.scheme, "key": b64encode(self.key)}

    @classmethod
    def from_json(cls, data: Any) -> PublicKey:
        if not isinstance(data, dict) or set(data) != {"scheme", "key"}:
            raise EncodingError("public key must be an object with 'scheme' and 'key'")
        return cls(scheme(data["scheme"]).name, b64decode(data["key"], field="public key"))

    @property
    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.scheme.encode() + b":" + self.key).hexdigest()


class PrivateKey:
    """A signing key. Saved as PKCS#8 PEM, encrypted when a passphrase is given."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = PublicKey(DEFAULT_SCHEME, raw)

    @property
    def scheme(self) -> str:
        return self.public_key.scheme

    @classmethod
    def generate(cls, scheme_name: str = DEFAULT_SCHEME) -> PrivateKey:
        if scheme_name != DEFAULT_SCHEME:
            raise SchemeError(f"cannot generate keys for scheme {scheme_name!r}")
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Deterministic key from 32 bytes: for seeded tests and simulations only."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    @property
    def crypto_key(self) -> Ed25519PrivateKey:
        """The `cryptography` key object, for X.509 signing."""
        return self._key

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase or None)
        except (ValueError, TypeError) as exc:
            raise EncodingError(f"cannot load private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SchemeError(f"unsupported private key type {type(key).__name__}")
        return cls(key)

    def save(self, path: Path, passphrase: bytes | None = None) -> None:
        """Write with mode 0600 from the first byte: a private key is never world-readable."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.to_pem(passphrase))
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None = None) -> PrivateKey:
        return cls.from_pem(Path(path).read_bytes(), passphrase)
