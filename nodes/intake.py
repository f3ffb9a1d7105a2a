"""How much new work a node takes from clients: what the cluster commits in a couple of
seconds, measured, so that a queue never grows past what will drain in that time.

Past the bound a submission is answered 503 with Retry-After (the seconds the pending
transactions take to commit at the measured rate) before its signature is even checked:
under overload a node spends its CPU on the blocks it can commit, not on admitting work it
would hold for longer than a client waits. Gossiped transactions are not bounded here
(they are already admitted somewhere; the mempool's own capacity bounds them).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ledger.errors import LedgerError

#: Seconds of the measured commit rate that may be pending.
DRAIN_SECONDS = 2.0
#: Seconds of commits the rate is measured over.
WINDOW_SECONDS = 10.0
#: Longest Retry-After given, in seconds.
MAX_RETRY_AFTER = 30


class BusyError(LedgerError):
    """The node holds as much pending work as the cluster commits in DRAIN_SECONDS."""

    code = "busy"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class Intake:
    """The bound on pending transactions a client may add to, from the commit rate."""

    def __init__(self, floor: int, clock: Callable[[], float] = time.monotonic) -> None:
        #: Always room for this many: an idle node takes a burst (one full block's worth).
        self.floor = floor
        self._clock = clock
        self._commits: deque[tuple[float, int]] = deque()

    def committed(self, count: int) -> None:
        now = self._clock()
        self._commits.append((now, count))
        while self._commits and self._commits[0][0] < now - WINDOW_SECONDS:
            self._commits.popleft()

    def rate(self) -> float:
        """Transactions committed per second over the window (0 before any)."""
        if not self._commits:
            return 0.0
        span = max(1.0, self._clock() - self._commits[0][0])
        return sum(count for _, count in self._commits) / span

    def limit(self) -> int:
        return max(self.floor, int(self.rate() * DRAIN_SECONDS))

    def admit(self, pending: int, count: int = 1) -> None:
        """Raise BusyError unless `count` more transactions fit beside `pending`."""
        limit = self.limit()
        if pending + count <= limit:
            return
        rate = max(self.rate(), self.floor / DRAIN_SECONDS, 1.0)
        retry = min(MAX_RETRY_AFTER, max(1, math.ceil((pending + count - limit) / rate)))
        raise BusyError(
            f"this node has {pending} transactions waiting to commit, as many as the "
            f"consortium commits in {DRAIN_SECONDS:g} s; retry in {retry} s",
            retry,
        )
