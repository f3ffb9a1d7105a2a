"""Who is speaking: a member's signing identity, and HTTP Message Signatures (RFC 9421)
for EPCIS clients of `/capture` that do not build ledger transactions themselves.

A capturing client signs each request with its member key:

    Content-Digest: sha-256=:<base64 of SHA-256(body)>:            (RFC 9530)
    Signature-Input: pt=("@method" "@authority" "@path" "@query" "content-type"
                         "content-digest");
                     created=<unix time>;keyid="<certificate fingerprint>";alg="ed25519";
                     nonce="<random>"
    Signature: pt=:<base64 Ed25519 signature of the RFC 9421 signature base>:

`keyid` is the SHA-256 fingerprint (hex) of the member's X.509 certificate, the same
value that names the signer of a transaction. The node accepts the signature when the
certificate is registered in the consortium, not revoked and valid now; when the
signature is at most five minutes old; when it covers the method, authority, path, query
and Content-Digest (which must match the body); and only once (a replay is refused).

Why RFC 9421 and not mutual TLS: it authenticates the request itself, end to end,
through any proxy or load balancer that terminates TLS, and it reuses the member's
existing Ed25519 key and certificate fingerprint, with no TLS client-certificate setup
on either side. A signature base always starts with a quoted component name, and every
ledger-signed object starts with "parktrace/v1/", so a request signature can never be
passed off as a signature over a transaction, a vote or anything else, or the reverse.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from ledger.crypto import PrivateKey, PublicKey
from ledger.errors import DuplicateError, IdentityError, LedgerError
from ledger.identity import Credential, check_ca_validity, check_validity
from ledger.membership import Membership
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
#: What a signature must cover: which request, to which node (a signed capture cannot be
#: replayed at another member's node), with which query (what a signed audit search or
#: report asks for) and which body.
REQUIRED = ("@method", "@authority", "@path", "@query", "content-digest")
MAX_AGE_SECONDS = 300
ACCEPT_SIGNATURE = (
    f'{SIGNATURE_LABEL}=("@method" "@authority" "@path" "@query" "content-type" '
    '"content-digest")'
    ';alg="ed25519"'
)


class AuthenticationError(LedgerError):
    """The request carries no valid HTTP message signature of a consortium member."""

    code = "unauthenticated"
    #: RFC 9421 section 5: tell the client how to sign.
    headers: ClassVar[dict[str, str]] = {"Accept-Signature": ACCEPT_SIGNATURE}


# -- a member's signing identity --------------------------------------------------------


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


class _Ed25519(HTTPSignatureAlgorithm):
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


class _Keys(HTTPSignatureKeyResolver):
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
    keys = _Keys(lambda _: None, identity.key)
    signer = HTTPMessageSigner(signature_algorithm=_Ed25519, key_resolver=keys)
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


@dataclass(frozen=True)
class Caller:
    """An authenticated member."""

    fingerprint: str
    org: str
    common_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class _Message:
    method: str
    url: str
    headers: Any


class RequestVerifier:
    """Checks RFC 9421 signatures against the consortium's current membership and
    refuses each signature's second use."""

    def __init__(
        self,
        membership: Callable[[], Membership],
        *,
        max_age: int = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._membership = membership
        self._max_age = max_age
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, method: str, url: str, headers: Any, body: bytes) -> Caller:
        if "signature" not in headers or "signature-input" not in headers:
            raise AuthenticationError(
                "sign this request with your member key (HTTP Message Signatures, RFC 9421): "
                "headers Signature-Input and Signature, keyid = your certificate fingerprint"
            )
        membership = self._membership()
        verifier = HTTPMessageVerifier(
            signature_algorithm=_Ed25519,
            key_resolver=_Keys(lambda keyid: self._member_key(membership, keyid), None),
        )
        verifier.max_clock_skew = datetime.timedelta(seconds=60)
        try:
            results = verifier.verify(
                _Message(method, url, headers),
                max_age=datetime.timedelta(seconds=self._max_age),
                require_components=REQUIRED,
                body=body,
            )
        except (InvalidSignature, HTTPMessageSignaturesException) as exc:
            inner = exc.args[0] if exc.args else None
            if isinstance(inner, LedgerError) and not isinstance(inner, AuthenticationError):
                raise inner from None  # e.g. a revoked or expired certificate: 403
            raise AuthenticationError(f"request signature rejected: {_cause(exc)}") from None
        result = results[0]
        keyid = str(result.parameters["keyid"])
        member = membership.member(keyid)
        assert member is not None  # the key resolved
        self._once(keyid, headers["signature"])
        cred = member.credential
        return Caller(keyid, cred.org, cred.common_name, cred.roles)

    def _member_key(self, membership: Membership, keyid: str) -> PublicKey | None:
        member = membership.member(keyid)
        if member is None:
            raise AuthenticationError(
                f"keyid {keyid[:16]}… is not the fingerprint of a registered member certificate"
            )
        if member.revoked_height is not None:
            raise IdentityError(f"{member.credential.describe()} is revoked")
        moment = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
        check_validity(member.credential, moment)
        check_ca_validity(membership.ca, moment)
        return member.public_key

    def _once(self, keyid: str, signature: str) -> None:
        digest = hashlib.sha256(keyid.encode() + b"\0" + signature.encode()).digest()
        now = self._clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if digest in self._seen:
                raise DuplicateError("this signed request was already received (a replay)")
            self._seen[digest] = now + self._max_age + 60


def _cause(exc: BaseException) -> str:
    """The message of a verifier error (it wraps what the key resolver raised)."""
    inner = exc.args[0] if exc.args else exc
    if isinstance(inner, LedgerError):
        return inner.message
    return str(inner)
