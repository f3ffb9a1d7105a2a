"""Durable storage of the consensus sign state: the guard that keeps a restarted node from
signing two conflicting votes.

Written atomically (temporary file, fsync, rename, fsync of the directory) before any
message signed under it leaves the node, so after a crash at any instant the file holds
either the previous state or the new one, never a torn mix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledger import codec
from ledger.errors import LedgerError

from .consensus.signstate import SignState


class SignStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> SignState | None:
        if not self.path.exists():
            return None
        try:
            return SignState.from_json(json.loads(self.path.read_bytes()))
        except (ValueError, LedgerError) as exc:
            raise LedgerError(
                f"sign state {self.path} is unreadable ({exc}); refusing to start, since "
                "resuming without it could sign conflicting votes"
            ) from exc

    def save(self, state: SignState) -> None:
        data = codec.canonical(state.to_json())
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
