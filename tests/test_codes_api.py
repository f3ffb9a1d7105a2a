"""Issuing codes over HTTP: `POST /v1/codes` with a transaction the producer signed, or
with GTIN, lot and count in a signed request; one transaction per batch whatever the
count; the batch's codes, ZIP and PDF for the issuer only; QR images of one code; and
refusals that name the problem."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.codes.service import CodesSettings, install
from api.services import ApiSettings
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode
from sdk.signing import Identity, sign_request
from traceability.codes.batch import TX_TYPE, new_batch
from traceability.codes.digital_link import build
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"codes api tests")
MASK_GTIN = "6907890000346"


def identity(park: Consortium, org: str) -> Identity:
    holder = park.user(org)
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint)


@dataclass
class Node:
    client: TestClient
    park: Consortium

    def signed(self, method: str, path: str, who: str, body: Any = None, **params: Any):
        raw = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        request = self.client.build_request(
            method, path, content=raw or None, headers=headers, params=params or None
        )
        sign_request(request, identity(self.park, who), raw)
        return self.client.send(request)

    def committed(self, tx_id: str) -> dict[str, Any]:
        status = self.client.get(f"/v1/transactions/{tx_id}", params={"wait": 10}).json()
        assert status["state"] == "committed", status
        return status

    def sign_batch(self, org: str, payload: dict[str, Any]) -> dict[str, Any]:
        tx = identity(self.park, org).sign_tx(self.park.genesis.chain_id, TX_TYPE, payload)
        return tx.to_json()


def start(park: Consortium, tmp_path, **codes_settings: Any) -> Iterator[Node]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    node = SoloNode(park.genesis, park.validator_keys, store, block_interval=0.02)
    delegated = {org: identity(park, org) for org in ("ganzhou-mask-factory",)}
    app = create_app(node, settings=ApiSettings(background=(node.run,), capture_signers=delegated))
    settings = {"resolver_host": HOST, "resolver_keys": (RESOLVER,), **codes_settings}
    install(app, CodesSettings(**settings))
    with TestClient(app) as client:
        yield Node(client, park)
    store.close()


@pytest.fixture
def node(park: Consortium, tmp_path) -> Iterator[Node]:
    yield from start(park, tmp_path, park_prefix="6975123")


def test_settings_tell_an_issuer_what_to_seal_to(node: Node) -> None:
    settings = node.client.get("/v1/codes/settings").json()
    assert settings["resolverHost"] == HOST
    assert settings["resolverKeys"] == [RESOLVER.public.to_json()]
    assert settings["parkPrefix"] == "6975123"
    assert settings["maxCount"] == 2**24


def test_a_million_codes_are_one_small_transaction(node: Node) -> None:
    """The producer signs the batch itself; the node records it in one transaction and
    then recognises any of the million serials, without a list of them."""
    link = build(MASK_GTIN, "KN95-261120-L1", attributes={"11": "261120"})
    batch, key = new_batch(link, 1_000_000, [RESOLVER.public], HOST)
    body = {"transaction": node.sign_batch("ganzhou-mask-factory", batch.payload())}
    assert len(json.dumps(body)) < 3000
    answer = node.client.post("/v1/codes", json=body)
    assert answer.status_code == 202, answer.text
    issued = answer.json()
    assert issued["count"] == 1_000_000 and issued["batch"] == batch.id
    assert answer.headers["location"] == f"/v1/codes/batches/{issued['transaction']}"
    height = node.committed(issued["transaction"])["height"]
    info = node.client.get(answer.headers["location"]).json()
    assert (info["state"], info["height"], info["issuedBy"]) == (
        "committed",
        height,
        "ganzhou-mask-factory",
    )
    serials = batch.serial_key(key)
    for index in (0, 1, 499_999, 999_999):
        code = batch.code(serials.serial(index))
        page = node.client.get(code.path(), headers={"Accept": "application/json"})
        assert page.json()["authenticity"] == {
            "status": "genuine",
            "batch": batch.id,
            "issuedBy": page.json()["authenticity"]["issuedBy"],
            "transaction": issued["transaction"],
            "height": height,
        }
    beyond = batch.code(serials.serial(1_000_000))  # the key makes it, the count refuses it
    assert node.client.get(beyond.path()).status_code == 404


def test_a_signed_request_with_gtin_lot_and_count(node: Node) -> None:
    request = {
        "gtin": MASK_GTIN,
        "lot": "KN95-261121-L2",
        "count": 25,
        "attributes": {"11": "261121"},
        "names": {"en": "KN95 mask", "zh": "KN95 口罩"},
    }
    answer = node.signed("POST", "/v1/codes", "ganzhou-mask-factory", request)
    assert answer.status_code == 202, answer.text
    tx_id = answer.json()["transaction"]
    node.committed(tx_id)
    listing = node.signed(
        "GET", f"/v1/codes/batches/{tx_id}/codes", "ganzhou-mask-factory", limit=10, offset=20
    )
    assert listing.status_code == 200, listing.text
    codes = listing.json()["codes"]
    assert [c["index"] for c in codes] == [20, 21, 22, 23, 24]
    assert codes[0]["uri"].startswith(f"https://{HOST}/01/06907890000346/10/KN95-261121-L2/21/")
    assert codes[0]["uri"].endswith("?11=261121")
    page = node.client.get(
        httpx.URL(codes[0]["uri"]).raw_path.decode(), headers={"Accept-Language": "zh"}
    )
    assert "正品码" in page.text and "KN95 口罩" in page.text
    archive = node.signed(
        "GET", f"/v1/codes/batches/{tx_id}/qr.zip", "ganzhou-mask-factory", limit=5, format="both"
    )
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        pngs = sorted(n for n in z.namelist() if n.endswith(".png"))
        assert len(pngs) == 5 and len([n for n in z.namelist() if n.endswith(".svg")]) == 5
        first = zxingcpp.read_barcodes(Image.open(io.BytesIO(z.read(pngs[0]))))
    everything = node.signed(
        "GET", f"/v1/codes/batches/{tx_id}/codes", "ganzhou-mask-factory"
    ).json()["codes"]
    assert first[0].text == everything[0]["uri"]
    pdf = node.signed("GET", f"/v1/codes/batches/{tx_id}/labels.pdf", "ganzhou-mask-factory")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    # only the issuer may list or print the codes
    other = node.signed("GET", f"/v1/codes/batches/{tx_id}/codes", "retail-pharmacy-chain")
    assert other.status_code == 403 and "ganzhou-mask-factory" in other.json()["message"]
    assert node.client.get(f"/v1/codes/batches/{tx_id}/codes").status_code == 401


def test_park_issued_gtins(node: Node) -> None:
    request = {"parkItem": "42", "lot": "P-1", "count": 3}
    answer = node.signed("POST", "/v1/codes", "ganzhou-mask-factory", request)
    assert answer.status_code == 202, answer.text
    assert answer.json()["gtin"] == "06975123000425"  # prefix, item 00042, check digit


GOOD = {"gtin": MASK_GTIN, "lot": "L", "count": 5}


@pytest.mark.parametrize(
    ("request_body", "field", "rule"),
    [
        ({**GOOD, "gtin": "6907890000347"}, "gtin", "gtin-check-digit"),
        ({**GOOD, "lot": "L L"}, "lot", "ai-charset"),
        ({**GOOD, "count": 0}, "count", "count"),
        ({**GOOD, "attributes": {"17": "291399"}}, "attributes.17", "ai-date"),
        ({**GOOD, "attributes": {"10": "X"}}, "attributes.10", "ai-in-query"),
        ({"lot": "L", "count": 5}, "gtin", "schema"),
        ({**GOOD, "colour": "red"}, "colour", "schema"),
    ],
)
def test_bad_requests_name_the_problem(
    node: Node, request_body: dict, field: str, rule: str
) -> None:
    answer = node.signed("POST", "/v1/codes", "ganzhou-mask-factory", request_body)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["error"], body["field"], body["rule"]) == ("invalid_code", field, rule)


def test_refusals(node: Node, park: Consortium) -> None:
    link = build(MASK_GTIN, "L9")
    plain = {"gtin": MASK_GTIN, "lot": "L9", "count": 5}
    unsigned = node.client.post("/v1/codes", json=plain)
    assert unsigned.status_code == 401
    no_delegation = node.signed("POST", "/v1/codes", "wenshan-growers", plain)
    assert no_delegation.status_code == 403 and "delegated" in no_delegation.json()["message"]
    # a batch key sealed to somebody else's resolver key could never be checked here
    stranger = ResolverKey.from_seed(b"elsewhere").public
    batch, _ = new_batch(link, 5, [stranger], HOST)
    body = {"transaction": node.sign_batch("ganzhou-mask-factory", batch.payload())}
    answer = node.client.post("/v1/codes", json=body)
    assert (answer.status_code, answer.json()["rule"]) == (400, "sealed-key")
    # a malformed payload
    bad = {**batch.payload(), "count": -1}
    answer = node.client.post(
        "/v1/codes", json={"transaction": node.sign_batch("ganzhou-mask-factory", bad)}
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "payload.count")
    # a retailer may not record codes.issue at all (write policy)
    batch, _ = new_batch(link, 5, [RESOLVER.public], HOST)
    answer = node.client.post(
        "/v1/codes",
        json={"transaction": node.sign_batch("retail-pharmacy-chain", batch.payload())},
    )
    assert answer.status_code == 403
    # the GTIN lies under the mask factory's GS1 Company Prefix
    first = node.client.post(
        "/v1/codes",
        json={"transaction": node.sign_batch("ganzhou-mask-factory", batch.payload())},
    )
    assert first.status_code == 202
    node.committed(first.json()["transaction"])
    again = node.client.post(
        "/v1/codes",
        json={"transaction": node.sign_batch("ganzhou-mask-factory", batch.payload())},
    )
    assert again.status_code == 409  # the same batch id, signed anew
    theirs, _ = new_batch(link, 5, [RESOLVER.public], HOST)
    taken = node.client.post(
        "/v1/codes",
        json={"transaction": node.sign_batch("notoginseng-processor", theirs.payload())},
    )
    assert taken.status_code == 403 and "ganzhou-mask-factory" in taken.json()["message"]
    assert node.client.get("/v1/codes/batches/" + "0" * 64).status_code == 404


def test_a_node_without_a_resolver_key_does_not_issue(park: Consortium, tmp_path) -> None:
    for node in start(park, tmp_path, resolver_keys=()):
        plain = {"gtin": MASK_GTIN, "lot": "L9", "count": 5}
        answer = node.signed("POST", "/v1/codes", "ganzhou-mask-factory", plain)
        assert answer.status_code == 403 and "resolver key" in answer.json()["message"]
        assert node.client.get("/v1/codes/settings").json()["resolverKeys"] == []


def test_qr_images_of_one_code(node: Node) -> None:
    uri = "https://id.parktrace.example/01/6907890000346/10/AB%2F1/21/S1?17=291111"
    png = node.client.get("/v1/codes/qr.png", params={"uri": uri, "scale": 4})
    assert png.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert decoded[0].text == (
        "https://id.parktrace.example/01/06907890000346/10/AB%2F1/21/S1?17=291111"
    )
    svg = node.client.get("/v1/codes/qr.svg", params={"uri": uri})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg")
    bad = node.client.get("/v1/codes/qr.png", params={"uri": uri.replace("0346", "0347")})
    assert bad.status_code == 400 and bad.json()["rule"] == "gtin-check-digit"
    order = node.client.get(
        "/v1/codes/qr.svg", params={"uri": "https://x.example/01/06907890000346/21/S/10/L"}
    )
    assert order.status_code == 400 and "out of order" in order.json()["message"]
    assert node.client.get("/v1/codes/qr.png", params={"uri": uri, "ec": "X"}).status_code == 422


RESOLVER_PATHS = (
    "/v1/codes",
    "/01/",
    "/00/",
    "/414/",
    "/gtin/",
    "/{compressed}",
    "/.well-known/gs1resolver",
)


def test_no_server_errors_on_codes_and_resolver(park: Consortium, tmp_path) -> None:
    """Generated valid and invalid input for every codes and resolver operation: never 5xx."""
    from tests.server_errors import assert_no_server_error, documented_operations

    for running in start(park, tmp_path):
        ours = [
            op
            for op in documented_operations(running.client.app)
            if op.path.startswith(RESOLVER_PATHS)
        ]
        # the codes API (8), each key route (/01/, /00/, /414/), the gtin short name, the
        # compressed form and the description file (HEAD is left out of the schema)
        assert len(ours) == 8 + 6
        for operation in ours:
            assert_no_server_error(operation, examples=15)
