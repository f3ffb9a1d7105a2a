"""Each request signature is accepted once: the digest of its verified signature bytes is
kept until the signature's window closes, and a second use inside the window is refused.

The node keeps these digests in its own store (`StoreSeen`), so a restart does not reopen
the window; `MemorySeen` is for an app without a store of its own to write to.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

from ledger.store import Store


class SeenSignatures(Protocol):
    def claim(self, digest: bytes, expires: int, now: int) -> bool:
        """Record `digest` until `expires` (unix seconds); False if it is already there."""
        ...


class MemorySeen:
    """In this process only: forgotten when it exits."""

    def __init__(self) -> None:
        self._expiry: dict[bytes, int] = {}
        self._queue: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()

    def claim(self, digest: bytes, expires: int, now: int) -> bool:
        with self._lock:
            while self._queue and self._queue[0][0] < now:
                _, old = heapq.heappop(self._queue)
                if self._expiry.get(old, now) < now:
                    del self._expiry[old]
            if self._expiry.get(digest, -1) >= now:
                return False
            self._expiry[digest] = expires
            heapq.heappush(self._queue, (expires, digest))
            return True


class StoreSeen:
    """In the node's store (table `seen_signatures`): survives restarts."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def claim(self, digest: bytes, expires: int, now: int) -> bool:
        return self._store.claim_once(digest, expires, now)
