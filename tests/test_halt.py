"""The payload that once halted the whole consortium, sent to four real node processes:
`codes.issue` with `{"event": {"epcList": 5}}`. It must be refused at the door (4xx) by
every node, and the cluster must keep committing; no node may exit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools import cluster
from devtools.samples import sample_event_tx
from nodes.config import BlockConfig
from tests.localnet import LocalNet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    net = LocalNet(
        tmp_path_factory.mktemp("halt"), blocks=BlockConfig(max_txs=100, batch_ms=50, idle_ms=500)
    )
    try:
        net.start()
        yield net
    finally:
        net.stop_all()


def test_the_halting_payload_is_refused_and_the_cluster_keeps_committing(net: LocalNet) -> None:
    members, http = net.members, net.http
    bad = net.consortium.sign_tx("gannan-orchard-coop", "codes.issue", {"event": {"epcList": 5}})
    for member in members:
        response = http.post(f"{member.url}/v1/transactions", json=bad.to_json())
        assert 400 <= response.status_code < 500, response.text
        assert "Traceback" not in response.text
    good = sample_event_tx(net.consortium, 0)
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
    before = [net.height(m.id) for m in members]
    time.sleep(2)  # heartbeat blocks go on
    assert all(net.height(m.id) > h for m, h in zip(members, before, strict=True))
    assert all(cluster.pid_of(net.dir, m.id) is not None for m in members)
