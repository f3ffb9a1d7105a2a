"""Sign-in for the console: the browser signs a one-time challenge with the member key it
holds (WebCrypto, non-extractable), and the node opens a session bound to the
certificate whose key verifies it.

The signed bytes are `parktrace-console/v1/sign-in\\n<chain id>\\n<authority>\\n<challenge>`:
they start neither with "parktrace/v1/" (every ledger-signed object) nor with a quote
(every RFC 9421 signature base), so a sign-in signature can never be passed off as a
transaction, a vote or a signed request, nor the reverse; and they name the chain and
the node, so a challenge answered for one node opens nothing at another.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.membership import Member, Membership

PREFIX = "parktrace-console/v1/sign-in\n"
CHALLENGE_SECONDS = 120
SESSION_SECONDS = 8 * 3600
MAX_PENDING = 10_000


def signed_bytes(chain_id: str, authority: str, challenge: str) -> bytes:
    """What the browser signs to answer `challenge` (see the module docstring)."""
    return f"{PREFIX}{chain_id}\n{authority}\n{challenge}".encode()


@dataclass(frozen=True)
class Session:
    token: str
    fingerprint: str
    expires: float


class SignInError(Exception):
    """A sign-in that cannot be accepted; the message says why, in plain words."""


class Sessions:
    """Outstanding challenges (each usable once, for two minutes) and open sessions, in
    this node's memory: a session is as local as the node that opened it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._challenges: dict[str, tuple[str, float]] = {}
        self._sessions: dict[str, Session] = {}

    def challenge(self, authority: str) -> str:
        now = self._clock()
        value = secrets.token_urlsafe(24)
        with self._lock:
            if len(self._challenges) >= MAX_PENDING:
                self._challenges = {k: v for k, v in self._challenges.items() if v[1] > now} or {}
            self._challenges[value] = (authority, now + CHALLENGE_SECONDS)
        return value

    def sign_in(
        self, membership: Membership, challenge: str, signature: bytes, chain_id: str
    ) -> tuple[Session, Member]:
        """A session for the member whose key signed `challenge`; the challenge is spent
        whatever the outcome."""
        with self._lock:
            pending = self._challenges.pop(challenge, None)
        if pending is None or pending[1] < self._clock():
            raise SignInError("the sign-in challenge is unknown or expired; try again")
        message = signed_bytes(chain_id, pending[0], challenge)
        member = next(
            (
                m
                for m in membership.members.values()
                if m.revoked_height is None
                and not m.node
                and m.public_key.verify(signature, message)
            ),
            None,
        )
        if member is None:
            raise SignInError(
                "this key belongs to no registered, unrevoked member certificate of this consortium"
            )
        session = Session(
            secrets.token_urlsafe(32), member.fingerprint, self._clock() + SESSION_SECONDS
        )
        with self._lock:
            self._sessions[session.token] = session
        return session, member

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < self._clock():
                del self._sessions[token]
                return None
        return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)
