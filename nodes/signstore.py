"""Durable storage of the consensus sign state: the guard that keeps a restarted node from
signing two conflicting votes.

Written atomically (temporary file, fsync, rename, fsync of the directory) before any
message signed under it leaves the node, so after a crash at any instant the file holds
either the previous state or the new one, never a torn mix.

The blocks the state refers to (locked, valid, proposed: most often one block, referred
to three times) are written once each, named by their hash, beside the state file and
before the state that names them, so a state on disk always finds its blocks. The state
itself names them by hash: a vote then costs a few hundred bytes of fsync'd writes
instead of every transaction of the block again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ledger import codec
from ledger.block import Block
from ledger.errors import LedgerError

from .consensus.signstate import SignState

_BLOCK_FILE = re.compile(r"^[0-9a-f]{64}\.json$")


class SignStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.blocks_dir = self.path.with_name(self.path.stem + "-blocks")
        self._written: set[str] = set()

    def load(self) -> SignState | None:
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_bytes())
            return SignState.from_json(data, self._read_blocks())
        except (ValueError, OSError, LedgerError) as exc:
            raise LedgerError(
                f"sign state {self.path} is unreadable ({exc}); refusing to start, since "
                "resuming without it could sign conflicting votes"
            ) from exc

    def _read_blocks(self) -> dict[str, Block]:
        blocks: dict[str, Block] = {}
        if not self.blocks_dir.is_dir():
            return blocks
        for file in self.blocks_dir.iterdir():
            if not _BLOCK_FILE.match(file.name):
                continue
            block = Block.from_json(json.loads(file.read_bytes()))
            block.check_body()  # the header commits to the transactions read back
            if block.hash != file.stem:
                raise LedgerError(f"{file} holds block {block.hash}, not the one it is named by")
            blocks[block.hash] = block
        self._written = set(blocks)
        return blocks

    def save(self, state: SignState) -> None:
        blocks = state.blocks()
        for block_hash, block in blocks.items():
            if block_hash not in self._written:
                self.blocks_dir.mkdir(parents=True, exist_ok=True)
                text = json.dumps(block.to_json(), ensure_ascii=False, separators=(",", ":"))
                write_durably(self.blocks_dir / f"{block_hash}.json", text.encode("utf-8"))
                self._written.add(block_hash)
        write_durably(self.path, codec.canonical(state.to_json(by_hash=True)))
        # Blocks no state on disk names any more (an earlier height's): never read again.
        for stale in self._written - set(blocks):
            (self.blocks_dir / f"{stale}.json").unlink(missing_ok=True)
        self._written &= set(blocks)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (data, then the name)."""
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
