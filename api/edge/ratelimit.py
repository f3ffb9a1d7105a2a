"""Requests per client address: a token bucket each, answered 429 with Retry-After.

Most endpoints need no credentials, so the client's address is what a limit can hold on
to. Buckets of clients not seen for a while are forgotten (at most `MAX_CLIENTS` kept),
so a flood of addresses costs bounded memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .body import error_message

MAX_CLIENTS = 10_000
#: Paths a monitor polls: never limited (they are cheap, and must answer when it matters).
EXEMPT = ("/healthz", "/metrics")


class TokenBuckets:
    """`rate` tokens a second per key, up to `burst`; one request takes one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when `key` may go ahead now, else the seconds until it may."""
        now = self.clock()
        tokens, since = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware over TokenBuckets keyed by the client's address."""

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "")
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            message = f"more than {self.buckets.rate:g} requests a second; retry in {retry} s"
            for out in error_message(429, "rate_limited", message, {"Retry-After": retry}):
                await send(out)
            return
        await self.app(scope, receive, send)
