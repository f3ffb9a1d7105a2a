"""A validator whose sign state cannot be written (here: its temporary file's name taken by
a directory, which stops even root) stops voting, not running: four real node processes,
the other three keep committing without its votes, it keeps following the chain, /healthz
says why, and once the write succeeds again its precommits are back in the certificates."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools import cluster
from nodes.config import BlockConfig
from tests.localnet import LocalNet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    localnet = LocalNet(
        tmp_path_factory.mktemp("signpause"),
        blocks=BlockConfig(max_txs=100, batch_ms=20, idle_ms=200),
        timeout=10,
    )
    try:
        localnet.start()
        yield localnet
    finally:
        localnet.stop_all()


def _signers(net: LocalNet, node_id: str, heights: range) -> dict[int, set[str]]:
    """Who signed each certificate `node_id` stored, for these heights."""
    store = net.store(node_id)
    try:
        found = {}
        for height in heights:
            certificate = store.commit(height)
            if certificate is not None:
                found[height] = {vid for vid, _ in certificate.signatures}
        return found
    finally:
        store.close()


def _wait(what, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what.__doc__}")


def test_a_sign_state_that_cannot_be_written_pauses_voting_until_it_can(net: LocalNet) -> None:
    victim, others = net.members[1].id, [m.id for m in net.members if m is not net.members[1]]
    health = net.health

    _wait(lambda: health(victim)["height"] >= 3, 60)
    blocker = net.dir / victim / "signstate.tmp"
    blocker.mkdir()
    try:

        def paused() -> dict | None:
            """the victim reports its sign state error"""
            info = health(victim)
            return info if info["signstate_error"] else None

        info = _wait(paused, 20)
        assert info["signing"] is False
        assert "IsADirectoryError" in info["signstate_error"]
        paused_at = info["height"]
        # Three of four are a quorum: the chain goes on, and the victim follows it.
        _wait(lambda: health(others[0])["height"] >= paused_at + 8, 30)
        _wait(lambda: health(victim)["height"] >= paused_at + 6, 30)
        assert health(victim)["signstate_error"] is not None
        last = health(others[0])["height"]
        signed = _signers(net, others[0], range(paused_at + 2, last + 1))
        assert signed and all(victim not in ids for ids in signed.values()), signed
    finally:
        blocker.rmdir()

    def voting() -> bool:
        """the victim votes again"""
        info = health(victim)
        return info["signstate_error"] is None and info["signing"]

    _wait(voting, 20)
    resumed_at = health(others[0])["height"]

    def in_certificates() -> bool:
        """the victim's precommits are in certificates again"""
        top = health(others[0])["height"]
        stored = _signers(net, others[0], range(resumed_at + 1, top + 1))
        return any(victim in ids for ids in stored.values())

    _wait(in_certificates, 30)
    log = net.log(victim)
    assert log.count("cannot write the sign state") == 1
    assert "sign state written again" in log
    assert all(cluster.pid_of(net.dir, m.id) for m in net.members)
