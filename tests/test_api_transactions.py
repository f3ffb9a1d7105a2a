"""Submission, status, long-poll and receipts over HTTP (in-process, FastAPI TestClient)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import ApiSettings
from ledger.consortium import Consortium
from ledger.errors import IdentityError
from ledger.store import Store
from ledger.tx import Transaction
from ledger.validate import Rejected
from nodes.solo import SoloNode
from sdk.client import ApiClientError, ParkTraceClient
from traceability.receipts import receipt_bytes, verify_receipt

CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"ex": "https://ns.parktrace.example/ex/"},
]
ORCHARD = "gannan-orchard-coop"


def event(step: str = "commissioning", serial: int = 1, **extra: object) -> dict:
    return {
        "event": {
            "@context": CONTEXT,
            "type": "ObjectEvent",
            "eventTime": "2026-11-20T08:00:00.000+08:00",
            "eventTimeZoneOffset": "+08:00",
            "epcList": [f"urn:epc:id:sgtin:0690123.400001.{serial}"],
            "action": "ADD",
            "bizStep": step,
            "ex:grade": "特级",
            **extra,
        }
    }


Factory = Callable[..., tuple[SoloNode, TestClient]]


@pytest.fixture
def serve(tmp_path) -> Iterator[Factory]:
    """Start an API over a fresh single-process node; stopped at the end of the test."""
    opened: list[TestClient] = []

    def start(park: Consortium, *, produce: bool = True, **settings: object):
        node = SoloNode(
            park.genesis,
            park.validator_keys,
            Store(f"sqlite:///{tmp_path / f'node{len(opened)}.db'}"),
            block_interval=0.02,
        )
        background = (node.run,) if produce else ()
        app = create_app(node, settings=ApiSettings(background=background, **settings))
        client = TestClient(app).__enter__()
        opened.append(client)
        return node, client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def park() -> Consortium:
    """Genesis just before now: transactions stamped now are within every validity."""
    return Consortium.sample(seed=b"api tests")


def sign(park: Consortium, payload: dict, org: str = ORCHARD) -> Transaction:
    return park.sign_tx(org, "epcis.event", payload)


def test_submit_wait_and_receipt(park: Consortium, serve: Factory) -> None:
    _, client = serve(park)
    info = client.get("/v1/chain").json()
    assert info["chain_id"] == park.genesis.chain_id and info["genesis_hash"] == park.genesis.hash
    tx = sign(park, event())
    response = client.post("/v1/transactions", json=tx.to_json())
    assert response.status_code == 202, response.text
    assert response.json() == {
        "id": tx.id,
        "state": "pending",
        "status_url": f"/v1/transactions/{tx.id}",
    }
    assert response.headers["location"] == f"/v1/transactions/{tx.id}"
    status = client.get(f"/v1/transactions/{tx.id}", params={"wait": 10}).json()
    assert status["state"] == "committed" and status["height"] >= 1
    check = verify_receipt(status["receipt"], park.genesis)
    assert check.tx_id == tx.id and check.signer == f"admin@{ORCHARD}"
    raw = client.get(f"/v1/transactions/{tx.id}/receipt")
    assert raw.status_code == 200 and raw.content == receipt_bytes(status["receipt"])
    assert client.get("/v1/chain").json()["log_size"] == 1


def test_duplicates_and_replays_are_409(park: Consortium, serve: Factory) -> None:
    _, client = serve(park, produce=False)
    tx = sign(park, event(serial=7))
    assert client.post("/v1/transactions", json=tx.to_json()).status_code == 202
    again = client.post("/v1/transactions", json=tx.to_json())
    assert again.status_code == 409 and again.json()["error"] == "duplicate"
    # The same event signed again (new nonce, new id) is the same EPCIS event: refused.
    same_event = sign(park, event(serial=7))
    assert same_event.id != tx.id
    refused = client.post("/v1/transactions", json=same_event.to_json())
    assert refused.status_code == 409
    assert "already pending" in refused.json()["message"]


def test_committed_duplicate_event_is_409(park: Consortium, serve: Factory) -> None:
    _, client = serve(park)
    tx = sign(park, event(serial=8))
    client.post("/v1/transactions", json=tx.to_json())
    assert client.get(f"/v1/transactions/{tx.id}?wait=10").json()["state"] == "committed"
    refused = client.post("/v1/transactions", json=sign(park, event(serial=8)).to_json())
    assert refused.status_code == 409
    assert f"already recorded (transaction {tx.id})" in refused.json()["message"]


def test_wait_long_polls_until_commit(park: Consortium, serve: Factory) -> None:
    node, client = serve(park, produce=False)

    async def commit_later() -> None:
        await asyncio.sleep(0.6)
        node.produce()

    tx = sign(park, event(serial=9))
    client.post("/v1/transactions", json=tx.to_json())
    started = time.monotonic()
    pending = client.get(f"/v1/transactions/{tx.id}", params={"wait": 0.2}).json()
    assert pending["state"] == "pending" and "receipt" not in pending
    assert time.monotonic() - started >= 0.2
    client.portal.start_task_soon(commit_later)
    status = client.get(f"/v1/transactions/{tx.id}", params={"wait": 10}).json()
    assert status["state"] == "committed"
    assert time.monotonic() - started < 5


def test_rejected_at_commit_time_says_why(park: Consortium, serve: Factory) -> None:
    """Admitted, then refused when the block was built (say its signer was revoked)."""
    node, client = serve(park, produce=False)
    tx = sign(park, event(serial=12))
    client.post("/v1/transactions", json=tx.to_json())
    revoked = IdentityError("signer certificate was revoked at height 1")
    client.portal.call(node.rejected, [Rejected(tx, revoked)])
    status = client.get(f"/v1/transactions/{tx.id}").json()
    assert status == {
        "id": tx.id,
        "state": "rejected",
        "reason": "signer certificate was revoked at height 1",
        "error": "bad_identity",
    }


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"{not json", 400, "encoding_error", "not valid JSON"),
        (b'{"body": {}}', 400, "schema_error", "missing field(s) signature"),
        (b"[]", 400, "schema_error", "expected an object"),
    ],
)
def test_malformed_envelopes_are_400(
    park: Consortium, serve: Factory, body: bytes, status: int, code: str, words: str
) -> None:
    _, client = serve(park, produce=False)
    response = client.post("/v1/transactions", content=body)
    assert response.status_code == status
    assert response.json()["error"] == code and words in response.json()["message"]


def test_refusals_name_the_reason(park: Consortium, serve: Factory) -> None:
    _, client = serve(park, produce=False)

    def post(tx: Transaction | dict) -> tuple[int, dict]:
        data = tx.to_json() if isinstance(tx, Transaction) else tx
        response = client.post("/v1/transactions", json=data)
        return response.status_code, response.json()

    status, body = post(sign(park, event("inspecting")))
    assert (status, body["error"]) == (403, "not_permitted")
    assert "bizStep 'inspecting'" in body["message"]
    stranger = Consortium.sample(seed=b"another park")
    status, body = post(stranger.sign_tx(ORCHARD, "epcis.event", event()))
    assert (status, body["error"]) == (403, "bad_identity")
    assert "unknown signer" in body["message"]
    forged = sign(park, event(serial=2)).to_json()
    forged["body"]["payload"]["event"]["epcList"] = ["urn:epc:id:sgtin:0690123.400001.666"]
    status, body = post(forged)
    assert (status, body["error"]) == (403, "bad_signature")
    status, body = post(sign(park, event(bizStep="urn:epcglobal:cbv:bizstep:shipping")))
    assert (status, body["error"]) == (400, "invalid_epcis")
    assert body["field"] == "body.payload.event.bizStep" and body["rule"] == "cbv-bare-word"


def test_limits_and_media_types(park: Consortium, serve: Factory) -> None:
    node, client = serve(park, produce=False)
    huge = client.post("/v1/transactions", content=b"{" + b" " * 300_000 + b"}")
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"
    text = client.post("/v1/transactions", content=b"hi", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    node.mempool.capacity = 0
    busy = client.post("/v1/transactions", json=sign(park, event(serial=3)).to_json())
    assert busy.status_code == 503 and busy.json()["error"] == "busy"
    assert busy.headers["retry-after"] == "1"


def test_unknown_and_malformed_ids(park: Consortium, serve: Factory) -> None:
    _, client = serve(park, produce=False)
    missing = client.get(f"/v1/transactions/{'ab' * 32}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = client.get("/v1/transactions/xyz")
    assert bad.status_code == 422 and bad.json()["field"] == "path.tx_id"
    assert client.get(f"/v1/transactions/{'ab' * 32}/receipt").status_code == 404


def test_batches_judge_each_item_or_all(park: Consortium, serve: Factory) -> None:
    node, client = serve(park, produce=False)
    good = [sign(park, event(serial=100 + i)).to_json() for i in range(3)]
    bad = sign(park, event("inspecting", serial=200)).to_json()
    response = client.post("/v1/transactions/batch", json={"transactions": [*good, bad, {}]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["refused"]) == (3, 2)
    assert [r["state"] for r in result["results"]] == ["pending"] * 3 + ["refused"] * 2
    assert (
        result["results"][3]["error"] == "not_permitted" and result["results"][3]["status"] == 403
    )
    assert result["results"][4]["message"].startswith("transactions[4]")
    # all or nothing: one bad item refuses the batch, nothing is admitted
    before = len(node.mempool)
    more = [sign(park, event(serial=300 + i)).to_json() for i in range(2)]
    atomic = client.post(
        "/v1/transactions/batch", json={"transactions": [*more, bad], "atomic": True}
    )
    assert atomic.status_code == 403 and atomic.json()["message"].startswith("transactions[2]")
    assert len(node.mempool) == before
    wrong = client.post("/v1/transactions/batch", json={"txs": []})
    assert wrong.status_code == 400
    ids = [r["id"] for r in result["results"][:3]] + ["ab" * 32, "nope"]
    states = client.post("/v1/transactions/status", json={"ids": ids}).json()["statuses"]
    assert [s["state"] for s in states] == ["pending"] * 3 + ["unknown"] * 2


def test_errors_never_leak_tracebacks(park: Consortium, serve: Factory) -> None:
    _, client = serve(park, produce=False)
    response = client.get("/no/such/endpoint")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "message", "status"}
    method = client.delete("/v1/chain")
    assert method.status_code == 405 and method.json()["error"] == "method_not_allowed"
    assert "Traceback" not in json.dumps(method.json())


def test_receipt_after_restart(park: Consortium, tmp_path) -> None:
    """A node restarted over its store serves receipts of what it committed before."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    node = SoloNode(park.genesis, park.validator_keys, Store(url), block_interval=0.02)
    tx = sign(park, event(serial=11))
    node.submit(tx)
    node.produce()
    node.store.close()
    again = SoloNode(park.genesis, park.validator_keys, Store(url))
    with TestClient(create_app(again)) as client:
        receipt = client.get(f"/v1/transactions/{tx.id}/receipt")
        assert receipt.status_code == 200
        assert verify_receipt(json.loads(receipt.content), park.genesis).tx_id == tx.id


def test_past_the_bound_a_submission_gets_503_with_retry_after_before_any_check(
    park: Consortium, serve: Factory
) -> None:
    node, client = serve(park, produce=False)
    node.intake.floor = 2
    for serial in (1, 2):
        tx = sign(park, event(serial=serial)).to_json()
        assert client.post("/v1/transactions", json=tx).status_code == 202
    forged = sign(park, event(serial=3)).to_json()
    forged["body"]["payload"]["event"]["epcList"] = ["urn:epc:id:sgtin:0690123.400001.666"]
    busy = client.post("/v1/transactions", json=forged)
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"] == "busy" and "retry in" in busy.json()["message"]
    assert int(busy.headers["retry-after"]) >= 1
    batch = {"transactions": [sign(park, event(serial=s)).to_json() for s in (4, 5)]}
    busy = client.post("/v1/transactions/batch", json=batch)
    assert busy.status_code == 503 and "retry-after" in busy.headers
    assert len(node.mempool) == 2  # nothing of the refused batch was admitted


def test_the_sdk_waits_as_the_node_says_and_loses_nothing(park: Consortium, serve: Factory) -> None:
    node, client = serve(park, produce=False)
    node.intake.floor = 1
    seen: list[int] = []
    client.event_hooks["response"].append(lambda response: seen.append(response.status_code))
    sdk = ParkTraceClient(http=client)
    sdk.submit(sign(park, event(serial=1)))
    impatient = ParkTraceClient(http=client, busy_patience=0)
    with pytest.raises(ApiClientError) as refused:
        impatient.submit(sign(park, event(serial=2)))
    assert refused.value.code == "busy" and refused.value.retry_after >= 1
    # The node frees room a moment later (as a commit would): the SDK's retry gets in.
    threading.Timer(1.2, lambda: setattr(node.intake, "floor", 10)).start()
    accepted = sdk.submit(sign(park, event(serial=2)))
    assert accepted["id"] in node.mempool
    assert seen.count(503) >= 2 and seen[-1] == 202
    assert len(node.mempool) == 2
