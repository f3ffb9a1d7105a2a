"""How a ParkTrace client signs: a member's signing identity, and the node's profile of HTTP
Message Signatures (RFC 9421).

A client signs each request with its member key:

    Content-Digest: sha-256=:<base64 of SHA-256(body)>:            (RFC 9530)
    Signature-Input: pt=("@method" "@authority" "@path" "@query" "content-type"
                         "content-digest");
                     created=<unix time>;keyid="<certificate fingerprint>";alg="ed25519";
                     nonce="<random>"
    Signature: pt=:<base64 Ed25519 signature of the RFC 9421 signature base>:

`keyid` is the SHA-256 fingerprint (hex) of the member's X.509 certificate, the same
value that names the signer of a transaction. What a node checks is in `api.auth`, which
verifies against the profile defined here: one definition for both ends.

A signature base always starts with a quoted component name, and every ledger-signed
object starts with "parktrace/v1/", so a request signature can never be passed off as a
signature over a transaction, a vote or anything else, or the reverse.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)

from ledger.crypto import PrivateKey, PublicKey
from ledger.errors import IdentityError
from ledger.identity import Credential
from ledger.tx import Transaction

SIGNATURE_LABEL = "pt"
COVERED = (
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-type",
    "content-digest",
    "gs1-capture-error-behaviour",
)
ACCEPT_SIGNATURE = (
    f'{SIGNATURE_LABEL}=("@method" "@authority" "@path" "@query" "content-type" '
    '"content-digest")'
    ';alg="ed25519"'
)


@dataclass(frozen=True)
class Identity:
    """A member certificate's private key, held by its owner (or a node it delegated to)."""

    key: PrivateKey
    fingerprint: str
    credential: Credential | None = None

    @property
    def org(self) -> str | None:
        return self.credential.org if self.credential else None

    def describe(self) -> str:
        if self.credential is None:
            return f"certificate {self.fingerprint[:16]}…"
        return f"{self.credential.common_name}@{self.credential.org}"

    def sign_tx(
        self, chain_id: str, tx_type: str, payload: dict[str, Any], timestamp: str | None = None
    ) -> Transaction:
        """A transaction signed here: the private key never leaves this process."""
        return Transaction.create(
            self.key,
            chain_id=chain_id,
            type=tx_type,
            payload=payload,
            signer=self.fingerprint,
            timestamp=timestamp,
        )

    @classmethod
    def from_files(
        cls, key_path: Path, cert_path: Path, passphrase: bytes | None = None
    ) -> Identity:
        """A PKCS#8 key file and its PEM certificate (as `consortium init` writes them)."""
        key = PrivateKey.load(key_path, passphrase)
        credential = Credential.from_pem(cert_path.read_text(encoding="ascii"), str(cert_path))
        if credential.public_key != key.public_key:
            raise IdentityError(f"{key_path} is not the key of certificate {cert_path}")
        return cls(key, credential.fingerprint, credential)

    @classmethod
    def from_consortium(
        cls, directory: Path, org: str, user: str | None = None, passphrase: bytes | None = None
    ) -> Identity:
        """A user of `org` from a consortium directory (the org's own copy of it)."""
        users = directory / "certs" / "orgs" / org / "users"
        names = sorted(p.stem for p in users.glob("*.pem"))
        if not names:
            raise IdentityError(f"{directory} holds no user certificate of organisation {org!r}")
        name = user or names[0]
        key_path = directory / "keys" / "orgs" / org / "users" / f"{name}.key"
        if not key_path.exists():
            raise IdentityError(f"{directory} holds no key of {name}@{org} ({key_path})")
        return cls.from_files(key_path, users / f"{name}.pem", passphrase)


# -- RFC 9421 ---------------------------------------------------------------------------


class Ed25519(HTTPSignatureAlgorithm):
    """Ed25519 through the ledger's own key classes, so the same signature rules apply."""

    algorithm_id = "ed25519"

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        self.public_key = public_key
        self.private_key = private_key

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> None:
        if not isinstance(self.public_key, PublicKey) or not self.public_key.verify(
            signature, message
        ):
            raise InvalidSignature("the signature does not verify with the member's key")


class Keys(HTTPSignatureKeyResolver):
    """Public keys by keyid (the verifier's side), or the one private key (the signer's)."""

    def __init__(self, public: Callable[[str], PublicKey | None], private: PrivateKey | None):
        self._public, self._private = public, private

    def resolve_public_key(self, key_id: str) -> PublicKey | None:
        return self._public(key_id)

    def resolve_private_key(self, key_id: str) -> PrivateKey:
        assert self._private is not None
        return self._private


def sign_request(
    request: Any, identity: Identity, body: bytes, *, created: datetime.datetime | None = None
) -> None:
    """Add Content-Digest, Signature-Input and Signature to an outgoing request (httpx)."""
    keys = Keys(lambda _: None, identity.key)
    signer = HTTPMessageSigner(signature_algorithm=Ed25519, key_resolver=keys)
    present = {name.lower() for name in request.headers}
    covered = [c for c in COVERED if c.startswith("@") or c in present or c == "content-digest"]
    signer.sign(
        request,
        key_id=identity.fingerprint,
        label=SIGNATURE_LABEL,
        created=created or datetime.datetime.now(datetime.UTC),
        nonce=secrets.token_urlsafe(16),  # two identical requests are still two requests
        covered_component_ids=covered,
        body=body,
    )


class SignedRequests(httpx.Auth):
    """httpx authentication that signs every request (RFC 9421) as `identity`: a plain
    httpx client (`httpx.Client(auth=SignedRequests(me))`) then speaks to the EPCIS
    queries and the audit API like the SDK does."""

    requires_request_body = True

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if "signature" not in request.headers:  # one signed already keeps its signer
            sign_request(request, self.identity, request.content)
        yield request
