"""A consortium of real node processes on this machine, for tests: each node a
`parktrace node run` process of its own (`devtools.cluster`), with the handles a test
needs to start, stop, signal and inspect them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from devtools import cluster
from ledger.consortium import Consortium
from ledger.genesis import Genesis
from ledger.store import Store
from nodes.config import BlockConfig

#: Consensus timeouts short enough that a lost round costs a test about a second.
FAST = {
    "timeout_propose": 1.0,
    "timeout_propose_delta": 0.5,
    "timeout_prevote": 0.5,
    "timeout_prevote_delta": 0.25,
    "timeout_precommit": 0.5,
    "timeout_precommit_delta": 0.25,
}


def end_process(process: subprocess.Popen, timeout: float) -> None:
    """Ask `process` to exit (SIGTERM), as an operator would; kill it if it has not within
    `timeout` seconds, so that a test never leaves a node behind."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LocalNet:
    """Four (or `nodes`) validators created under `directory`, none started yet."""

    def __init__(
        self,
        directory: Path,
        *,
        nodes: int = 4,
        blocks: BlockConfig | None = None,
        timeout: float = 30,
        **create: Any,
    ) -> None:
        self.dir = directory
        self.members = cluster.create(
            directory,
            nodes=nodes,
            p2p_port=cluster.free_ports(),
            api_port=cluster.free_ports(),
            blocks=blocks or BlockConfig(max_txs=500, batch_ms=50, idle_ms=1000),
            consensus=FAST,
            **create,
        )
        self.by_id = {m.id: m for m in self.members}
        self.consortium = Consortium.load(directory / "consortium")
        self.genesis: Genesis = self.consortium.genesis
        self.http = httpx.Client(timeout=timeout)

    def url(self, node_id: str) -> str:
        return self.by_id[node_id].url

    def start(self, *ids: str, env: dict[str, str] | None = None) -> None:
        """Start `ids` (all nodes if none) and wait until each answers /healthz; `env`
        adds to the environment the processes inherit."""
        ids = ids or tuple(self.by_id)
        for node_id in ids:
            cluster.start(self.dir, node_id, env=env)
        missing = cluster.wait_ready(self.dir, [self.by_id[i] for i in ids], 60)
        assert not missing, f"never ready: {missing}; {self.log(missing[0])[-3000:]}"

    def stop_all(self) -> None:
        for member in self.members:
            cluster.stop(self.dir, member.id)
        self.http.close()

    def log(self, node_id: str) -> str:
        return (self.dir / node_id / "node.log").read_text(errors="replace")

    def signal(self, node_id: str, sig: signal.Signals) -> None:
        """Send `sig` to the node's process; after SIGKILL, wait until it is gone."""
        pid = cluster.pid_of(self.dir, node_id)
        assert pid is not None, f"{node_id} is not running"
        os.kill(pid, sig)
        if sig is signal.SIGKILL:
            while cluster.alive(pid):
                time.sleep(0.05)

    def health(self, node_id: str) -> dict[str, Any]:
        return self.http.get(f"{self.url(node_id)}/healthz").json()

    def height(self, node_id: str) -> int:
        return self.health(node_id)["height"]

    def store(self, node_id: str) -> Store:
        """The node's own database, opened beside it (read it; never write)."""
        return Store(f"sqlite:///{self.dir / node_id / 'node.db'}", migrate=False)


def start_solo(root: Path, consortium: Path, port: int, *args: str) -> subprocess.Popen:
    """A `parktrace serve --solo` process on 127.0.0.1:`port` over `root`/node.db, its log in
    `root`/serve.log (appended, so a restart keeps the first run's), once it answers."""
    import sys

    command = [
        sys.executable, "-m", "cli", "serve", "--solo", "--consortium", str(consortium),
        "--db", str(root / "node.db"), "--port", str(port), "--block-interval", "0.05", *args,
    ]  # fmt: skip
    with (root / "serve.log").open("a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {(root / 'serve.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/chain", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            end_process(process, 5)
            raise AssertionError(f"server not ready: {(root / 'serve.log').read_text()}")
        time.sleep(0.1)
