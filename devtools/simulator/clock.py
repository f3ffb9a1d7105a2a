"""The virtual clock: a priority queue of events. Time only moves when an event is taken, so
a run takes as long as its events, not as long as its timeouts."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0  # ties break in scheduling order: deterministic

    def at(self, when: float, handler: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(when, self.now), self._seq, handler, args))

    def after(self, delay: float, handler: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, handler, *args)

    def pop(self) -> tuple[Callable[..., None], tuple[Any, ...]] | None:
        """Advance to the next event and return it, or None when nothing is left."""
        if not self._queue:
            return None
        when, _, handler, args = heapq.heappop(self._queue)
        self.now = when
        return handler, args

    def next_time(self) -> float | None:
        return self._queue[0][0] if self._queue else None
