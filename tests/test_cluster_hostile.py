"""A node in a hostile world, with four real node processes on loopback: signed requests
replayed however their headers are spelled, at another node, after a restart; a live
`parktrace verify` and `/v1/audit/verify` while a load commits; an SDK client whose node
crashes after answering 202.

Uses the cluster harness of tests/test_cluster.py. The tests share one cluster and run in
file order; each one also passes alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from devtools import cluster
from ledger.store import Store
from nodes.consensus.signstate import SignState
from nodes.consensus.step import Step
from nodes.devchain import DevChain
from nodes.signstore import SignStore
from sdk.audit import AuditClient
from sdk.client import ParkTraceClient
from sdk.signing import Identity, sign_request

from .test_cluster import Cluster

pytestmark = pytest.mark.slow

REGULATOR = "market-supervision-bureau"
EVIDENCE = "/v1/audit/evidence"


#: Blocks every node starts with: more than one page of the store's block reader (256),
#: so a live verification is still reading when new blocks commit.
PREFILLED = 300


def _prefill(net: Cluster, blocks: int) -> None:
    """Give every node the same chain of `blocks` certified empty blocks before it starts
    (seconds, where consensus on a shared machine would take minutes), with the sign
    state of a validator that signed up to that height."""
    first = net.dir / net.members[0].id / "node.db"
    store = Store(f"sqlite:///{first}")
    chain = DevChain(
        net.genesis,
        net.consortium.validator_keys,
        store,
        block_interval=timedelta(milliseconds=50),
    )
    for _ in range(blocks):
        chain.commit_block([])
    store.close()
    for member in net.members:
        if member is not net.members[0]:
            shutil.copyfile(first, net.dir / member.id / "node.db")
        done = SignState(blocks, 0, Step.COMMIT, -1, None, -1, None, (), ())
        SignStore(net.dir / member.id / "signstate.json").save(done)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("hostile"))
    _prefill(c, PREFILLED)
    c.start()
    yield c
    for member in c.members:
        cluster.stop(c.dir, member.id)
    c.http.close()


def _regulator(net: Cluster) -> Identity:
    return Identity.from_consortium(net.dir / "consortium", REGULATOR)


def _signed(net: Cluster, node_id: str) -> httpx.Request:
    """A regulator's signed request for node `node_id` (an audit read: cheap, answers 200)."""
    request = httpx.Request("GET", f"{net.by_id[node_id].url}{EVIDENCE}")
    sign_request(request, _regulator(net), b"")
    return request


def _resend(net: Cluster, request: httpx.Request, node_id: str | None = None) -> httpx.Response:
    """Send the same bytes again (to another node if given; the Host header unchanged)."""
    url = request.url if node_id is None else f"{net.by_id[node_id].url}{EVIDENCE}"
    return net.http.send(httpx.Request(request.method, url, headers=request.headers))


def test_replayed_signature_is_refused_however_its_header_is_spelled(net: Cluster) -> None:
    node = net.members[0].id
    request = _signed(net, node)
    assert net.http.send(request).status_code == 200
    assert _resend(net, request).status_code == 409
    request.headers["Signature"] += ";a=1"
    appended = _resend(net, request)
    assert appended.status_code == 409, appended.text
    assert "replay" in appended.json()["message"]
    for name in ("Signature", "Signature-Input"):
        request.headers[name] = "renamed=" + request.headers[name].split("=", 1)[1]
    renamed = _resend(net, request)
    assert renamed.status_code == 409, renamed.text


def test_request_signed_for_one_node_is_refused_by_another(net: Cluster) -> None:
    a, b = net.members[0], net.members[1]
    request = _signed(net, a.id)
    refused = _resend(net, request, b.id)
    assert refused.status_code == 401, refused.text
    assert f"signed for authority '{a.api}'" in refused.json()["message"]
    request.headers["Host"] = b.api  # pretending it was signed for B breaks the signature
    assert _resend(net, request, b.id).status_code == 401
    assert net.http.send(_signed(net, b.id)).status_code == 200  # signed for B: accepted


def test_replay_after_the_node_restarts_is_refused(net: Cluster) -> None:
    node = net.members[2].id
    request = _signed(net, node)
    assert net.http.send(request).status_code == 200
    cluster.stop(net.dir, node)
    net.start(node)
    replayed = _resend(net, request)
    assert replayed.status_code == 409, replayed.text


def test_live_verify_while_a_load_commits_reports_ok(net: Cluster) -> None:
    ids = [m.id for m in net.members]
    node = ids[0]
    load = net.txs(5000)
    done = threading.Event()

    def keep_committing() -> list[str]:
        """Small batches until both verifications are over: many small blocks, and
        blocks committing all along."""
        accepted: list[str] = []
        for i in range(0, len(load), 4):
            if done.is_set():
                break
            accepted += net.submit(load[i : i + 4], ids)
            time.sleep(0.01)
        return accepted

    db = f"sqlite:///{net.dir / node / 'node.db'}"
    genesis = str(net.dir / "consortium" / "genesis.json")
    with ThreadPoolExecutor(1) as pool:
        committing = pool.submit(keep_committing)
        try:
            start = net.height(node)
            verified = subprocess.run(
                [sys.executable, "-m", "cli", "verify", "--db", db, "--genesis", genesis],
                capture_output=True,
                text=True,
                timeout=300,
            )
            with AuditClient(net.by_id[node].url, identity=_regulator(net)) as audit:
                report = audit.verify()
            grew = net.height(node) - start
        finally:
            done.set()
            accepted = committing.result()
    assert start > PREFILLED
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert report["ok"], report["problem"]
    assert start <= report["head_height"] <= report["node_height"]
    assert grew > 0 and len(accepted) < len(load)  # blocks committed all along
    net.wait_committed(accepted, node)


def test_sdk_resubmits_after_the_node_that_answered_202_crashes(net: Cluster) -> None:
    ids = [m.id for m in net.members]
    net.wait_heights_equal(ids)
    entry, others = ids[0], ids[1:]
    for node_id in others:  # no quorum: what `entry` accepts stays in its memory only
        cluster.stop(net.dir, node_id)
    submissions: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/v1/transactions":
            submissions.append(request.url.path)

    http = httpx.Client(base_url=net.by_id[entry].url, timeout=90, event_hooks={"request": [count]})
    tx = net.txs(1)[0]
    status_url = f"{net.by_id[entry].url}/v1/transactions/{tx.id}"
    with ParkTraceClient(http=http) as client, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.submit, tx, wait=150)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = net.http.get(status_url)
            if answer.status_code == 200 and answer.json()["state"] == "pending":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the node never answered 202 for the transaction")
        net.kill(entry)  # before the transaction could commit
        net.start(*others, entry)
        final = waiting.result(timeout=180)
    http.close()
    assert final["state"] == "committed", final
    assert len(submissions) >= 2  # answered 202, forgotten in the crash, resubmitted
    net.wait_committed([tx.id], others[0])
