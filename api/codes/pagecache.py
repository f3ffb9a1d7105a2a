"""What a consumer page costs once per chain height, kept for the requests after the first.

Everything a page and its JSON show but the scan verdict (the journey, the batches, the
recall, the trust rules' word, the rendered HTML and the serialised document) follows
from the committed chain alone, so it is exact until the next block commits: entries are
keyed by what the request asks (path, query, media type, language, host) and carry the
height they were computed at; at any other height they are computed again. The verdict
changes with every scan, so it is judged and rendered for each request
(api.routes.resolver fills it into the cached body).

A popular product's code is scanned in bursts; the cache is bounded in entries and in
the bytes of the bodies it keeps (least recently used first out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def size(self) -> int: ...


V = TypeVar("V", bound=Sized)

#: Most entries kept (a consortium's busy codes, in each media type and language).
MAX_ENTRIES = 8192
#: Most body bytes kept.
MAX_BYTES = 192 * 1024 * 1024


class HeightCache(Generic[V]):
    """An LRU of values each valid at the chain height it was computed at."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, height: int, make: Callable[[], V]) -> V:
        """The value of `key` at `height`: kept, or `make()` (outside the lock: two requests
        may compute one value at once, and the later one is kept)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] == height:
                self._items.move_to_end(key)
                return found[1]
        value = make()
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1].size
            self._items[key] = (height, value)
            self._bytes += value.size
            while self._items and (
                len(self._items) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped.size
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
