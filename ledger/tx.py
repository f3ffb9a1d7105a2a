"""The transaction envelope: who says what, on which chain, signed.

Wire form (JSON):
    {"body": {"chain_id", "type", "payload", "signer", "timestamp", "nonce"},
     "signature": {"scheme", "value"}}

`signer` is the SHA-256 fingerprint (hex) of the signer's X.509 certificate, resolved
against the consortium's membership. The id of a transaction is the hash of its
domain-tagged body: it is what the signature covers, so a re-encoded or re-signed
envelope cannot pose as a different transaction.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from . import codec
from .crypto import PrivateKey, PublicKey, scheme
from .errors import DomainError, EncodingError, SchemaError, SignatureError, TooLargeError
from .merkle import leaf_hash
from .timefmt import now, parse_time

MAX_TX_BYTES = 64 * 1024
NONCE_BYTES = 16
_TYPE_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")
BODY_FIELDS = ("chain_id", "type", "payload", "signer", "timestamp", "nonce")


def require_keys(obj: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """`obj` as an object with exactly `keys`, or a SchemaError naming what is wrong."""
    if not isinstance(obj, dict):
        raise SchemaError(f"{what}: expected an object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    extra = sorted(set(obj) - set(keys))
    if missing:
        raise SchemaError(f"{what}: missing field(s) {', '.join(missing)}")
    if extra:
        raise SchemaError(f"{what}: unknown field(s) {', '.join(extra)}")
    return obj


def _require_str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise SchemaError(f"{what}.{key}: expected a string, got {type(value).__name__}")
    return value


#: Successful signature checks, kept when a process turns the cache on
#: (`cache_verified_signatures`), as a consortium node does, so that it verifies each
#: transaction once: on admission, not again when it checks the proposal holding it or
#: proposes it. Keyed by a digest of (id = hash of the signed bytes, scheme, key,
#: signature): verification is a pure function of those, so a hit gives the verdict a fresh
#: check would. Failures are never kept. Off by default, so that a verifier re-checks what
#: the same process checked before (and benchmarks measure real checks).
_VERIFIED: dict[bytes, None] = {}
_VERIFIED_MAX = 0
_VERIFIED_LOCK = threading.Lock()


def cache_verified_signatures(capacity: int) -> None:
    """Remember up to `capacity` successful transaction signature checks in this process
    (the older half is forgotten when full); 0 turns the cache off and empties it."""
    global _VERIFIED_MAX
    with _VERIFIED_LOCK:
        _VERIFIED_MAX = max(0, capacity)
        if not _VERIFIED_MAX:
            _VERIFIED.clear()


def _verified_token(tx: Transaction, key: PublicKey) -> bytes:
    head = b"%s|%s|%d|" % (tx.id.encode(), key.scheme.encode(), len(key.key))
    return hashlib.sha256(head + key.key + tx.signature).digest()


def _remember_verified(token: bytes) -> None:
    with _VERIFIED_LOCK:
        if not _VERIFIED_MAX:
            return
        if len(_VERIFIED) >= _VERIFIED_MAX:  # forget the older half, oldest first
            for old in list(itertools.islice(_VERIFIED, max(1, _VERIFIED_MAX // 2))):
                del _VERIFIED[old]
        _VERIFIED[token] = None


@dataclass(frozen=True)
class Transaction:
    chain_id: str
    type: str
    payload: dict[str, Any]
    signer: str
    timestamp: str
    nonce: bytes
    scheme: str
    signature: bytes

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        key: PrivateKey,
        *,
        chain_id: str,
        type: str,
        payload: dict[str, Any],
        signer: str,
        timestamp: str | None = None,
        nonce: bytes | None = None,
    ) -> Transaction:
        """Sign a new transaction locally: the private key never leaves its owner."""
        import secrets

        body = {
            "chain_id": chain_id,
            "type": type,
            "payload": payload,
            "signer": signer,
            "timestamp": timestamp or now(),
            "nonce": codec.b64encode(nonce if nonce is not None else secrets.token_bytes(16)),
        }
        signature = key.sign(codec.domain_bytes("tx", body))
        return cls.from_json(
            {"body": body, "signature": {"scheme": key.scheme, "value": codec.b64encode(signature)}}
        )

    @classmethod
    def from_json(cls, data: Any) -> Transaction:
        """Strictly parse the wire form; every problem is a typed error naming the field."""
        return cls._from_json(data, None)

    @classmethod
    def _from_json(cls, data: Any, canonical: bytes | None) -> Transaction:
        """`from_json`; `canonical`, if given, is `codec.canonical(data)`, which is the
        envelope's canonical bytes once `data` is a valid envelope (`to_json()` gives back
        `data`: exact keys, strict base64, the payload object itself)."""
        env = require_keys(data, ("body", "signature"), "transaction")
        body = require_keys(env["body"], BODY_FIELDS, "body")
        sig = require_keys(env["signature"], ("scheme", "value"), "signature")
        chain_id = _require_str(body, "chain_id", "body")
        tx_type = _require_str(body, "type", "body")
        if not _TYPE_RE.fullmatch(tx_type) or len(tx_type) > 64:
            raise SchemaError(f"body.type: {tx_type!r} is not a transaction type name")
        if not isinstance(body["payload"], dict):
            raise SchemaError("body.payload: expected an object")
        signer = _require_str(body, "signer", "body")
        if not _HEX64.fullmatch(signer):
            raise SchemaError("body.signer: expected a certificate fingerprint (64 hex digits)")
        timestamp = _require_str(body, "timestamp", "body")
        parse_time(timestamp, "body.timestamp")
        nonce = codec.b64decode(body["nonce"], field="body.nonce", size=NONCE_BYTES)
        scheme_name = scheme(sig["scheme"]).name
        signature = codec.b64decode(sig["value"], field="signature.value")
        tx = cls(
            chain_id, tx_type, body["payload"], signer, timestamp, nonce, scheme_name, signature
        )
        if canonical is not None:
            object.__setattr__(tx, "_canonical", canonical)
        size = len(tx.canonical())
        if size > MAX_TX_BYTES:
            raise TooLargeError(f"transaction is {size} bytes; the limit is {MAX_TX_BYTES}")
        return tx

    @classmethod
    def from_canonical(cls, raw: bytes) -> Transaction:
        """Parse bytes that must already be the canonical encoding (stored or relayed)."""
        if isinstance(raw, bytes) and len(raw) <= MAX_TX_BYTES * 2:
            # What `parse` does, without walking the value to canonicalise it (the verifier
            # reads every stored transaction through here).
            try:
                data, canonical = codec.loads_with_canonical(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise EncodingError(f"transaction is not valid JSON: {exc}") from exc
            tx = cls._from_json(data, canonical)
        else:
            tx = cls.parse(raw)
        if tx.canonical() != raw:
            raise EncodingError("transaction is not in canonical form (its bytes were altered)")
        return tx

    @classmethod
    def parse(cls, raw: bytes | str) -> Transaction:
        """Parse untrusted bytes (HTTP body, file, peer message)."""
        if len(raw) > MAX_TX_BYTES * 2:
            raise TooLargeError(f"transaction is {len(raw)} bytes; the limit is {MAX_TX_BYTES}")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EncodingError(f"transaction is not valid JSON: {exc}") from exc
        return cls.from_json(data)

    # -- derived ------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "type": self.type,
            "payload": self.payload,
            "signer": self.signer,
            "timestamp": self.timestamp,
            "nonce": codec.b64encode(self.nonce),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "body": self.body(),
            "signature": {"scheme": self.scheme, "value": codec.b64encode(self.signature)},
        }

    def _cached(self, name: str, make: Any) -> Any:
        """Memoise a derived value on this frozen instance (it can never change)."""
        value = self.__dict__.get(name)
        if value is None:
            value = make()
            object.__setattr__(self, name, value)
        return value

    def signing_bytes(self) -> bytes:
        return self._cached("_signing", lambda: codec.domain_prefix("tx") + self._body_bytes())

    def _body_bytes(self) -> bytes:
        """Canonical bytes of the body, cut out of the envelope's canonical bytes.

        Exact, not a shortcut: JCS encodes nested objects exactly as on their own, and
        sorts "body" before "signature", so the envelope is `{"body":` + body + suffix.
        One canonicalisation per transaction instead of two.
        """
        envelope = self.canonical()
        value = codec.b64encode(self.signature)  # base64: nothing JSON would escape
        if _PLAIN_NAME.match(self.scheme):  # then its JSON string is the name in quotes
            suffix = b',"signature":{"scheme":"%s","value":"%s"}}' % (
                self.scheme.encode("ascii"),
                value.encode("ascii"),
            )
        else:
            signature = {"scheme": self.scheme, "value": value}
            suffix = b',"signature":' + codec.canonical(signature) + b"}"
        if not (envelope.startswith(b'{"body":') and envelope.endswith(suffix)):
            raise EncodingError("transaction envelope is not in canonical form")
        return envelope[len(b'{"body":') : -len(suffix)]

    @property
    def id(self) -> str:
        """Hex SHA-256 of the signed bytes."""
        return self._cached("_id", lambda: hashlib.sha256(self.signing_bytes()).hexdigest())

    def canonical(self) -> bytes:
        """Canonical bytes of the whole envelope: stored, and committed to by Merkle leaves."""
        return self._cached("_canonical", lambda: codec.canonical(self.to_json()))

    def leaf_hash(self) -> bytes:
        return self._cached("_leaf", lambda: leaf_hash(self.canonical()))

    def verify_signature(self, key: PublicKey) -> None:
        """Raise unless `key` signed this body as a transaction.

        On failure, says whether the signature was made over the same body as another kind
        of object (DomainError), which is an attack or a client bug worth naming.
        """
        if key.scheme != self.scheme:
            raise SchemaError(f"signature scheme {self.scheme} differs from the key's {key.scheme}")
        token = _verified_token(self, key) if _VERIFIED_MAX else None
        if token is not None and token in _VERIFIED:
            return
        if key.verify(self.signature, self.signing_bytes()):
            if token is not None:
                _remember_verified(token)
            return
        for domain in sorted(codec.DOMAINS - {"tx"}):
            if key.verify(self.signature, codec.domain_bytes(domain, self.body())):
                raise DomainError(
                    f"transaction {self.id[:16]} carries a signature made for a {domain!r}, "
                    "not for a transaction"
                )
        raise SignatureError(
            f"signature of transaction {self.id[:16]} does not verify with the signer's key"
        )
