"""Answers about committed transactions whose block's certificate is fixed, kept by id.

A block's commit certificate is the node's own until the next block names the one the
chain keeps (docs/design-notes.md, "Blocks and certificates"); from then on nothing in a
receipt can change: the transaction, its block, its proofs (the log's is against the
header's own log size) and the membership links before it. So a receipt read while a
later block was already committed is the receipt for good, and its serialised answer
is served again without a database read (least recently used first out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

#: Most answers kept (a receipt is a few kilobytes).
MAX_ENTRIES = 4096


class FixedAnswers:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep `body`; only for a transaction read when its block was below the head."""
        with self._lock:
            self._items[key] = body
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
