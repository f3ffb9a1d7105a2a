"""Node restart time with a store of many events: ready (/healthz answers) after a start
that verifies the whole store (no checkpoint: the baseline, what every start did before)
and after a restart from the node's checkpoint, in the same run; and how long the re-hash
of the checkpointed blocks takes in the background.

    .venv/bin/python bench/restart.py [--events 1000000] [--keep DIR]
    .venv/bin/python bench/restart.py --quick

Prints one JSON object and appends a row to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PER_BLOCK = 1000


def build(directory: Path, events: int) -> None:
    """A fully signed chain of `events` sample events in `directory`/node/node.db, and a
    node.toml for the consortium's first validator (its peers are never started)."""
    from devtools.cluster import free_ports
    from ledger.store import Store
    from nodes.config import render

    if directory.exists():
        shutil.rmtree(directory)
    consortium = common.sample_consortium(directory / "consortium")
    node = directory / "node"
    node.mkdir()
    store = Store(f"sqlite:///{node / 'node.db'}")
    common.build_chain(
        store,
        directory / "consortium",
        events,
        per_block=PER_BLOCK,
        verify=False,  # signatures this script just made; the node's start verifies them
        progress=lambda n: n % 100_000 == 0 and common.log(f"  {n} events"),
    )
    store.close()
    validators = [v.id for v in consortium.genesis.validator_set().validators]
    p2p, api = free_ports(), free_ports()
    (node / "node.toml").write_text(
        render(
            node_id=validators[0],
            consortium="../consortium",
            db="sqlite:///node.db",
            listen=f"127.0.0.1:{p2p}",
            peers={v: f"127.0.0.1:{p2p + i + 1}" for i, v in enumerate(validators[1:])},
            api_listen=f"127.0.0.1:{api}",
        ),
        encoding="utf-8",
    )
    (directory / "api_port").write_text(str(api))


def start(directory: Path) -> dict[str, Any]:
    """Start the node; seconds until /healthz answers and until the check of the store it
    runs in the background after a restart from its checkpoint (re-hash below it, then a
    full verification) is done."""
    port = int((directory / "api_port").read_text())
    log = open(directory / "node.log", "ab")  # noqa: SIM115 (closed below, after the node)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "node", "run", "--config", "node.toml"],
        cwd=directory / "node",
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONPATH": str(common.ROOT)},
    )
    ready = rehashed = None
    info: dict[str, Any] = {}
    try:
        while time.perf_counter() - started < 3600:
            if proc.poll() is not None:
                raise SystemExit(f"the node exited with {proc.returncode}: see {log.name}")
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            ready = ready or time.perf_counter() - started
            if info.get("prefix_check") != "running":
                rehashed = time.perf_counter() - started if info.get("prefix_check") else None
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        log.close()
    return {
        "ready_s": round(ready or 0, 2),
        "rehashed_s": round(rehashed, 2) if rehashed is not None else None,
        "height": info.get("height"),
        "restarted_from": info.get("restarted_from"),
    }


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--keep", type=Path, help="build the store here once and reuse it")
    args = p.parse_args()
    events = 5_000 if args.quick else args.events
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bench-restart-"))
    marker = directory / f"built-{events}"
    if not marker.exists():
        common.log(f"building {events} events in {directory}")
        build(directory, events)
        marker.touch()
    (directory / "node" / "checkpoint.bin").unlink(missing_ok=True)
    common.log("start without a checkpoint (the whole store is verified)")
    full = start(directory)
    assert (directory / "node" / "checkpoint.bin").exists(), "the node wrote no checkpoint"
    common.log("restart from the checkpoint")
    fast = start(directory)
    if args.keep is None:
        shutil.rmtree(directory)
    result = {
        "events": events,
        "full_verify_start": full,
        "checkpoint_restart": fast,
        "speedup": common.ratio(full["ready_s"], fast["ready_s"], 1),
    }
    common.emit(
        "restart",
        result,
        {
            "events": f"{events:,}",
            "ready s, whole store verified (baseline)": full["ready_s"],
            "ready s, from checkpoint": fast["ready_s"],
            "speedup": result["speedup"],
            "re-hash below checkpoint done s": fast["rehashed_s"],
            "restarted from height": fast["restarted_from"],
        },
        args,
        title="A node's start with a full store: ready after verifying all of it (the "
        "baseline) and after a restart from its checkpoint, same run.",
    )


if __name__ == "__main__":
    main()
