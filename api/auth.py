"""Who is speaking: HTTP Message Signatures (RFC 9421) for EPCIS clients of `/capture` and
for the audit API, in the profile `sdk.signing` defines. A client signs each request with
its member key (the headers are shown there).

The node accepts the signature when the certificate is registered in the consortium, not
revoked and valid now; when the signature is at most five minutes old; when it covers the
method, authority, path, query and Content-Digest (which must match the body); and only
once (a replay is refused).

Why RFC 9421 and not mutual TLS: it authenticates the request itself, end to end,
through any proxy or load balancer that terminates TLS, and it reuses the member's
existing Ed25519 key and certificate fingerprint, with no TLS client-certificate setup
on either side.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from ledger.crypto import PublicKey
from ledger.errors import DuplicateError, IdentityError, LedgerError
from ledger.identity import check_ca_validity, check_validity
from ledger.membership import Membership
from sdk.signing import ACCEPT_SIGNATURE
from sdk.signing import Ed25519 as _Ed25519
from sdk.signing import Keys as _Keys

#: What a signature must cover: which request, to which node (a signed capture cannot be
#: replayed at another member's node), with which query (what a signed audit search or
#: report asks for) and which body.
REQUIRED = ("@method", "@authority", "@path", "@query", "content-digest")
MAX_AGE_SECONDS = 300


class AuthenticationError(LedgerError):
    """The request carries no valid HTTP message signature of a consortium member."""

    code = "unauthenticated"
    #: RFC 9421 section 5: tell the client how to sign.
    headers: ClassVar[dict[str, str]] = {"Accept-Signature": ACCEPT_SIGNATURE}


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
