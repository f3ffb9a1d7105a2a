"""Must-show 3 with real processes: four validator nodes on loopback; one node's SQLite
store is edited behind its back while it runs; the cross-node comparison (from the
regulator's CLI, and from an honest node's endpoint) names that node and the height, and
the node's own verification report names the height too.

The nodes are started by a launcher that mounts the audit router on the node's app
(api/app.py's router list gains it when the lead adds it; the launcher then leaves the
app as it is), so the test does not depend on that edit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli import audit as cli_audit
from devtools import cluster
from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.config import BlockConfig
from sdk.audit import AuditClient
from sdk.signing import Identity
from tests.localnet import FAST

pytestmark = pytest.mark.slow

REGULATOR = "market-supervision-bureau"
#: `parktrace node run`, with the audit router on the app if it is not there already.
LAUNCHER = """
import sys
from pathlib import Path
from api import node_main
from api.routes import audit

plain = node_main.build_app

def with_audit(node):
    app = plain(node)
    audit.mount(app)
    return app

node_main.build_app = with_audit
node_main.run(Path(sys.argv[1]))
"""


@dataclass
class Net:
    dir: Path
    members: list[cluster.Member]
    consortium: Consortium
    regulator: Identity

    def url(self, node_id: str) -> str:
        return next(m.url for m in self.members if m.id == node_id)


def _regulator_files(consortium_dir: Path) -> tuple[Path, Path]:
    key = sorted((consortium_dir / "keys" / "orgs" / REGULATOR / "users").glob("*.key"))[0]
    cert = consortium_dir / "certs" / "orgs" / REGULATOR / "users" / f"{key.stem}.pem"
    return key, cert


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("audit-cluster")
    p2p = cluster.free_ports()
    api = cluster.free_ports()
    while abs(api - p2p) <= 5:
        api = cluster.free_ports()
    members = cluster.create(
        directory,
        nodes=4,
        p2p_port=p2p,
        api_port=api,
        blocks=BlockConfig(max_txs=500, batch_ms=50, idle_ms=1000),
        consensus=FAST,
    )
    key, cert = _regulator_files(directory / "consortium")
    env = {
        "PARKTRACE_AUDIT_NODES": ",".join(f"{m.id}={m.url}" for m in members),
        "PARKTRACE_AUDIT_KEY": str(key),
        "PARKTRACE_AUDIT_CERT": str(cert),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    try:
        for member in members:
            config = (directory / member.id / "node.toml").resolve()
            cluster.start(directory, member.id, env, command=("-c", LAUNCHER, str(config)))
        missing = cluster.wait_ready(directory, members, 60)
        assert not missing, (directory / missing[0] / "node.log").read_text()[-2000:]
        yield Net(
            directory,
            members,
            Consortium.load(directory / "consortium"),
            Identity.from_files(key, cert),
        )
    finally:
        for member in members:
            cluster.stop(directory, member.id)


def _commit_everywhere(net: Net, count: int) -> int:
    """Record `count` events through the first node; the height of the last, once every
    node has committed it."""
    txs = [sample_event_tx(net.consortium, i) for i in range(count)]
    first = net.members[0].url
    response = httpx.post(
        f"{first}/v1/transactions/batch",
        json={"transactions": [tx.to_json() for tx in txs]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    height = 0
    for member in net.members:
        deadline = time.monotonic() + 30
        while True:
            status = httpx.get(f"{member.url}/v1/transactions/{txs[-1].id}", timeout=10).json()
            if status["state"] == "committed":
                height = status["height"]
                break
            assert time.monotonic() < deadline, f"{member.id} never committed: {status}"
            time.sleep(0.2)
    return height


def test_must_show_3_a_tampered_node_is_named_by_comparison_and_its_own_report(net: Net) -> None:
    height = _commit_everywhere(net, 12)
    victim = net.members[2].id
    store = Store(f"sqlite:///{net.dir / victim / 'node.db'}", migrate=False)
    try:
        with store.engine.begin() as conn:
            changed = conn.execute(
                text(
                    "update transactions set envelope = "
                    'replace(envelope, \'"ex:note":"\', \'"ex:note":"edited \') '
                    "where height = :h"
                ),
                {"h": height},
            ).rowcount
    finally:
        store.close()
    assert changed >= 1

    # The regulator's machine asks every validator (parktrace audit compare --cluster).
    runner = CliRunner()
    who = ["--consortium", str(net.dir / "consortium"), "--org", REGULATOR]
    result = runner.invoke(cli_audit.app, ["compare", "--cluster", str(net.dir), "--json", *who])
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.stdout)
    assert verdict["diverging_nodes"] == [victim]
    assert verdict["first_divergence"] == height and verdict["diverging_heights"] == 1
    assert sorted(verdict["divergences"][0]["majority"]) == sorted(
        m.id for m in net.members if m.id != victim
    )

    # An honest node compares itself with the others, as the delegated regulator.
    honest = net.members[0]
    with AuditClient(honest.url, identity=net.regulator) as audit:
        from_node = audit.compare()
        assert from_node["diverging_nodes"] == [victim]
        assert from_node["first_divergence"] == height
        assert audit.verify()["ok"] is True

    # The victim's own verification report names the height.
    with AuditClient(net.url(victim), identity=net.regulator) as audit:
        report = audit.verify()
    assert report["ok"] is False and report["node"] == victim
    assert report["problem"]["height"] == height
