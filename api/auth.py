"""Who is speaking: HTTP Message Signatures (RFC 9421) for EPCIS clients of `/capture` and
for the audit API, in the profile `sdk.signing` defines. A client signs each request with
its member key (the headers are shown there).

The node accepts the signature when the certificate is registered in the consortium, not
revoked and valid now; when the signature is at most five minutes old; when it covers the
method, authority, path, query and Content-Digest (which must match the body); when the
signed `@authority` is one of this node's own (api.authorities), so a request signed for
one node is refused by another; and only once: the digest of the signature bytes is kept
in the node's store until the signature's window closes (api.replay), so a replay is
refused, however the Signature field is spelled and even after the node restarts.

Why RFC 9421 and not mutual TLS: it authenticates the request itself, end to end,
through any proxy or load balancer that terminates TLS, and it reuses the member's
existing Ed25519 key and certificate fingerprint, with no TLS client-certificate setup
on either side.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import http_sf
from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.structures import get_header_fields

from ledger.crypto import PublicKey
from ledger.errors import DuplicateError, IdentityError, LedgerError
from ledger.identity import check_ca_validity, check_validity
from ledger.membership import Membership
from sdk.signing import ACCEPT_SIGNATURE, Ed25519, Keys

from .replay import MemorySeen, SeenSignatures

#: What a signature must cover: which request, to which node (a signed capture cannot be
#: replayed at another member's node), with which query (what a signed audit search or
#: report asks for) and which body.
REQUIRED = ("@method", "@authority", "@path", "@query", "content-digest")
MAX_AGE_SECONDS = 300
CLOCK_SKEW_SECONDS = 60


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
    """Checks RFC 9421 signatures against the consortium's current membership and this
    node's own authorities, and refuses each signature's second use."""

    def __init__(
        self,
        membership: Callable[[], Membership],
        *,
        max_age: int = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
        authorities: frozenset[str] | None = None,
        seen: SeenSignatures | None = None,
    ) -> None:
        """`authorities`: the `@authority` values that name this node (api.authorities);
        None accepts any (an app with no address of its own, e.g. under a test client).
        `seen`: where used signatures are kept (the node's store); default in memory."""
        self._membership = membership
        self._max_age = max_age
        self._clock = clock
        self._authorities = authorities
        self._seen = seen if seen is not None else MemorySeen()

    def verify(self, method: str, url: str, headers: Any, body: bytes) -> Caller:
        if "signature" not in headers or "signature-input" not in headers:
            raise AuthenticationError(
                "sign this request with your member key (HTTP Message Signatures, RFC 9421): "
                "headers Signature-Input and Signature, keyid = your certificate fingerprint"
            )
        membership = self._membership()
        verifier = HTTPMessageVerifier(
            signature_algorithm=Ed25519,
            key_resolver=Keys(lambda keyid: self._member_key(membership, keyid), None),
        )
        verifier.max_clock_skew = datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
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
        self._check_authority(result.covered_components['"@authority"'])
        keyid = str(result.parameters["keyid"])
        member = membership.member(keyid)
        assert member is not None  # the key resolved
        created = int(result.parameters["created"])
        self._once(_signature_bytes(headers, result.label), created)
        cred = member.credential
        return Caller(keyid, cred.org, cred.common_name, cred.roles)

    async def verify_async(self, method: str, url: str, headers: Any, body: bytes) -> Caller:
        """`verify` off the event loop: recording the signature writes to the store."""
        return await anyio.to_thread.run_sync(self.verify, method, url, headers, body)

    def _check_authority(self, authority: str) -> None:
        if self._authorities is None or authority in self._authorities:
            return
        raise AuthenticationError(
            f"this request is signed for authority {authority!r}, which is not this node "
            f"(it answers as {', '.join(sorted(self._authorities))}): sign the request for "
            "the address you send it to; a request signed for another node is refused"
        )

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

    def _once(self, signature: bytes, created: int) -> None:
        """Refuse a signature seen before, for as long as it could still be accepted: until
        `created` + max age + clock skew. Keyed on the signature bytes themselves, so a
        different spelling of the same signature (another label, extra parameters on the
        Signature field) is the same signature."""
        now = int(self._clock())
        expires = max(created, now) + self._max_age + CLOCK_SKEW_SECONDS
        if not self._seen.claim(hashlib.sha256(signature).digest(), expires, now):
            raise DuplicateError("this signed request was already received (a replay)")


def _signature_bytes(headers: Any, label: str) -> bytes:
    """The decoded value of the verified signature (RFC 8941 byte sequence), not its text."""
    fields = get_header_fields(headers)
    value, _params = http_sf.parse(fields["signature"].encode(), tltype="dictionary")[label]
    return bytes(value)


def _cause(exc: BaseException) -> str:
    """The message of a verifier error (it wraps what the key resolver raised)."""
    inner = exc.args[0] if exc.args else exc
    if isinstance(inner, LedgerError):
        return inner.message
    return str(inner)
