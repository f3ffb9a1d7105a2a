"""A validator that lost what it signed must not sign it again: four real node processes.

A proposer signs its proposal and prevote at height H+1 while two peers are frozen (no
quorum, so H+1 cannot commit), is killed with SIGKILL and restarted without its
`signstate.json`. Before the sign guard it proposed and prevoted again at (H+1, 0), and
`duplicate_vote` evidence against it was committed. Now it follows the chain unsigned,
then votes again above every height it may have signed at. A node whose store is lost
but whose sign state survives (the WAL case) catches up and votes instead of refusing
to start with a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import cluster
from devtools.samples import sample_event_tx
from nodes.config import BlockConfig
from tests.localnet import LocalNet

pytestmark = pytest.mark.slow


class Net(LocalNet):
    def __init__(self, directory: Path) -> None:
        # A long idle interval: between heartbeat blocks the height stays put, so the
        # test can freeze peers before the next height starts.
        super().__init__(
            directory, blocks=BlockConfig(max_txs=200, batch_ms=50, idle_ms=4000), timeout=10
        )
        self.validators = self.consortium.genesis.validator_set()
        self.counter = 0

    def sign_state(self, node_id: str) -> dict | None:
        path = self.dir / node_id / "signstate.json"
        try:
            return json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def nudge(self, node_id: str) -> None:
        """One transaction: the cluster starts the next height now instead of idling."""
        tx = sample_event_tx(self.consortium, self.counter)
        self.counter += 1
        self.http.post(f"{self.by_id[node_id].url}/v1/transactions", json=tx.to_json())

    def wait_for(self, what, timeout: float, nudge: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            if nudge is not None:
                self.nudge(nudge)
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what.__doc__ or what}")

    def evidence_heights(self, node_id: str) -> list[int]:
        store = self.store(node_id)
        try:
            height = store.height()
            return [r.height for r in store.raw_blocks(1, height) if json.loads(r.evidence)]
        finally:
            store.close()

    def signed_commits(self, node_id: str, signer: str, above: int) -> list[int]:
        """Heights above `above` whose certificate (in `node_id`'s store) `signer` signed."""
        store = self.store(node_id)
        try:
            found = []
            for height in range(above + 1, store.height() + 1):
                certificate = store.commit(height)
                if certificate and any(v == signer for v, _ in certificate.signatures):
                    found.append(height)
            return found
        finally:
            store.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = Net(tmp_path_factory.mktemp("signstate"))
    n.start(*n.by_id)
    yield n
    for member in n.members:
        pid = cluster.pid_of(n.dir, member.id)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        cluster.stop(n.dir, member.id)
    n.http.close()


def _stall_with_proposer_signed(net: Net) -> tuple[str, str, list[str], int]:
    """Freeze two validators right after a commit so that the proposer of the next
    height signs its proposal and prevote there, which can then never commit."""
    for _ in range(5):
        heights = {i: net.health(i)["height"] for i in net.by_id}
        h = max(heights.values())
        if min(heights.values()) != h:
            time.sleep(0.2)
            continue
        proposer = net.validators.proposer(h + 1, 0).id
        others = [i for i in net.by_id if i != proposer]
        frozen, witness = others[:2], others[2]
        for node_id in frozen:
            net.signal(node_id, signal.SIGSTOP)
        if net.health(proposer)["height"] == h:
            return proposer, witness, frozen, h
        for node_id in frozen:  # the next height began before the freeze: try again
            net.signal(node_id, signal.SIGCONT)
        time.sleep(1)
    raise AssertionError("could not freeze the cluster between two heights")


def test_lost_sign_state_never_equivocates_and_votes_again(net: Net) -> None:
    net.wait_for(lambda: min(net.health(i)["height"] for i in net.by_id) >= 1, 30)
    proposer, witness, frozen, h = _stall_with_proposer_signed(net)

    def signed_at_next_height() -> bool:
        """the proposer signed a proposal and a prevote at H+1"""
        state = net.sign_state(proposer)
        return bool(state and state["height"] == h + 1 and state["proposals"] and state["votes"])

    net.wait_for(signed_at_next_height, 20)
    net.signal(proposer, signal.SIGKILL)
    (net.dir / proposer / "signstate.json").unlink()
    net.start(proposer)
    time.sleep(3)  # before the guard, the restarted node had signed again by now
    state = net.sign_state(proposer)
    assert state is None, f"signed without knowing what it signed before: {state}"
    assert net.health(proposer)["signing"] is False
    assert net.health(proposer)["height"] == h
    assert "no sign state" in net.log(proposer)

    for node_id in frozen:
        net.signal(node_id, signal.SIGCONT)
    net.wait_for(lambda: net.health(proposer)["signing"], 60, nudge=witness)
    net.wait_for(lambda: net.signed_commits(witness, proposer, h + 2), 60, nudge=witness)
    for _ in range(3):  # a few more blocks: any evidence gossiped would be in them
        target = net.health(witness)["height"] + 1
        net.wait_for(lambda t=target: net.health(witness)["height"] >= t, 30, nudge=witness)
    for node_id in net.by_id:
        assert net.evidence_heights(node_id) == [], f"evidence committed on {node_id}"
    assert min(net.signed_commits(witness, proposer, h)) > h + 2
    assert "may have signed up to height" in net.log(proposer)


def test_sign_state_ahead_of_a_lost_store_catches_up_then_votes(net: Net) -> None:
    victim = next(i for i in net.by_id if net.sign_state(i))
    witness = next(i for i in net.by_id if i != victim)
    net.signal(victim, signal.SIGKILL)
    signed = net.sign_state(victim)
    assert signed is not None
    for suffix in ("", "-wal", "-shm"):  # the store is gone, the sign state survives
        (net.dir / victim / f"node.db{suffix}").unlink(missing_ok=True)
    net.start(victim)
    net.wait_for(lambda: net.health(victim)["height"] >= signed["height"], 60, nudge=witness)
    top = net.health(witness)["height"]
    net.wait_for(lambda: net.signed_commits(witness, victim, top), 60, nudge=witness)
    assert "ahead of the store" in net.log(victim) or net.health(victim)["signing"]
    assert "Traceback" not in net.log(victim)
    for node_id in net.by_id:
        assert net.evidence_heights(node_id) == [], f"evidence committed on {node_id}"


def test_operator_reset_records_a_floor_and_node_run_refuses_in_one_line(net: Net) -> None:
    node_id = next(iter(net.by_id))
    config = net.dir / node_id / "node.toml"
    cli = [sys.executable, "-m", "cli", "node"]
    refused = subprocess.run(
        [*cli, "reset-signstate", "--config", str(config)], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "--i-understand" in refused.stderr
    cluster.stop(net.dir, node_id)
    done = subprocess.run(
        [*cli, "reset-signstate", "--config", str(config), "--i-understand"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    floor = json.loads((net.dir / node_id / "signing-floor.json").read_text())
    assert floor["signed_up_to"] >= 1 and "operator reset" in done.stderr
    bad = net.dir / node_id / "broken.toml"
    bad.write_text(config.read_text().replace("../consortium", "../no-such-consortium", 1))
    broken = subprocess.run([*cli, "run", "--config", str(bad)], capture_output=True, text=True)
    assert broken.returncode != 0 and "Traceback" not in broken.stderr + broken.stdout
    assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    net.start(node_id)
