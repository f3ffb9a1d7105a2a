"""The payload that once halted the whole consortium, sent to four real node processes:
`codes.issue` with `{"event": {"epcList": 5}}`. It must be refused at the door (4xx) by
every node, and the cluster must keep committing; no node may exit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools import cluster
from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from nodes.config import BlockConfig
from tests.test_cluster import FAST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def park_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list]]:
    directory = tmp_path_factory.mktemp("halt")
    members = cluster.create(
        directory,
        nodes=4,
        p2p_port=cluster.free_ports(),
        api_port=cluster.free_ports(),
        blocks=BlockConfig(max_txs=100, batch_ms=50, idle_ms=500),
        consensus=FAST,
    )
    try:
        for member in members:
            cluster.start(directory, member.id)
        missing = cluster.wait_ready(directory, members, 90)
        assert not missing, f"never ready: {missing}"
        yield directory, members
    finally:
        for member in members:
            cluster.stop(directory, member.id)


def _height(http: httpx.Client, member) -> int:
    return http.get(f"{member.url}/healthz").json()["height"]


def test_the_halting_payload_is_refused_and_the_cluster_keeps_committing(park_cluster) -> None:
    directory, members = park_cluster
    consortium = Consortium.load(directory / "consortium")
    bad = consortium.sign_tx("gannan-orchard-coop", "codes.issue", {"event": {"epcList": 5}})
    with httpx.Client(timeout=30) as http:
        for member in members:
            response = http.post(f"{member.url}/v1/transactions", json=bad.to_json())
            assert 400 <= response.status_code < 500, response.text
            assert "Traceback" not in response.text
        good = sample_event_tx(consortium, 0)
        response = http.post(f"{members[1].url}/v1/transactions", json=good.to_json())
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {
                m.id: http.get(f"{m.url}/v1/transactions/{good.id}").json().get("state", "unknown")
                for m in members
            }
            if set(states.values()) == {"committed"}:
                break
            time.sleep(0.2)
        assert set(states.values()) == {"committed"}, states
        before = [_height(http, m) for m in members]
        time.sleep(2)  # heartbeat blocks go on
        assert all(_height(http, m) > h for m, h in zip(members, before, strict=True))
    assert all(cluster.pid_of(directory, m.id) is not None for m in members)
