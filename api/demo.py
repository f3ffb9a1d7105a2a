"""`parktrace demo`: a sample consortium and a chain of the park's three cases on embedded
SQLite, verified end to end. Everything lives under one data directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.consortium import SAMPLE_CONFIG, Consortium, ConsortiumConfig, build_consortium
from ledger.store import Store
from ledger.timefmt import now as utc_now
from ledger.verify import VerifyReport, verify_store
from nodes.devchain import DevChain

from .samples import sample_event_tx


def prepare(
    data_dir: Path,
    *,
    reset: bool,
    blocks: int = 60,
    per_block: int = 6,
    say: Callable[[str], None] = print,
) -> tuple[Consortium, Store]:
    """Create (or reuse) the consortium directory and the node's chain."""
    consortium_dir = data_dir / "consortium"
    db_path = data_dir / "node.db"
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    if (consortium_dir / "genesis.json").exists() and db_path.exists():
        say(f"reusing {data_dir} (pass --reset to start over)")
        return Consortium.load(consortium_dir), Store(f"sqlite:///{db_path}")
    data_dir.mkdir(parents=True, exist_ok=True)
    # Genesis an hour ago; blocks follow it one second apart.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    consortium = build_consortium(ConsortiumConfig.load(SAMPLE_CONFIG), now)
    consortium.write(consortium_dir, force=True)
    say(f"consortium written to {consortium_dir} (keys are mode 0600)")
    db_path.unlink(missing_ok=True)
    store = Store(f"sqlite:///{db_path}")
    chain = DevChain(consortium.genesis, consortium.validator_keys, store)
    for b in range(blocks):
        stamp = utc_now()
        chain.commit_block(
            [sample_event_tx(consortium, b * per_block + i, stamp) for i in range(per_block)]
        )
    say(f"recorded {blocks * per_block} events of the three park cases in {blocks} blocks")
    return consortium, store


def verify(consortium: Consortium, store: Store) -> VerifyReport:
    return verify_store(store, consortium.genesis)
