"""EPCIS 2.0 over HTTP: /capture (RFC 9421-signed), /events queries, product history, and
the SDK's local-signing capture (in-process, FastAPI TestClient)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import ApiSettings
from ledger.consortium import Consortium, ConsortiumConfig, build_consortium
from ledger.store import Store
from nodes.solo import SoloNode
from sdk.client import ApiClientError, ParkTraceClient
from sdk.signing import Identity, SignedRequests, sign_request
from tests.testdata import EPCIS_EXAMPLES
from traceability.epcis.document import check_document, parse_json
from traceability.epcis.schema import schema_problems

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ROLES = ["producer", "processor", "logistics", "inspector", "retailer", "regulator"]


def identity(park: Consortium, org: str, user: str | None = None) -> Identity:
    holder = park.user(org, user)
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint)


Start = Callable[..., TestClient]


@pytest.fixture
def start(tmp_path) -> Iterator[Start]:
    opened: list[TestClient] = []

    def run(park: Consortium, **settings: object) -> TestClient:
        store = Store(f"sqlite:///{tmp_path / f'node{len(opened)}.db'}")
        node = SoloNode(park.genesis, park.validator_keys, store, block_interval=0.02)
        app = create_app(node, settings=ApiSettings(background=(node.run,), **settings))
        client = TestClient(app).__enter__()
        opened.append(client)
        return client

    yield run
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def lab() -> Consortium:
    """A consortium whose policy lets its one member record any business step, so that
    every GS1 example is judged on EPCIS rules alone."""
    config = ConsortiumConfig.from_dict(
        {
            "chain_id": "gs1-conformance",
            "membership_approval": {"m": 1, "of": ["lab"]},
            "policy": {
                "transactions": {"epcis.event": ROLES},
                "biz_steps": {},
                "unlisted_biz_steps": ROLES,
            },
            "organizations": [
                {
                    "id": "lab",
                    "name": "EPCIS conformance lab",
                    "roles": [*ROLES, "validator"],
                    "users": ["client", "gateway"],
                    "validators": ["lab-node"],
                }
            ],
        }
    )
    return build_consortium(config, datetime.now(UTC) - timedelta(minutes=1), b"lab")


@pytest.fixture(scope="module")
def park() -> Consortium:
    return Consortium.sample(seed=b"epcis api tests")


def capturing(client: TestClient, who: Identity) -> ParkTraceClient:
    return ParkTraceClient(http=client, identity=who)


def finished(sdk: ParkTraceClient, job: dict, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    job = sdk.capture_job(job["captureID"])
    while job["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
        job = sdk.capture_job(job["captureID"])
    return job


# -- /capture ------------------------------------------------------------------------------


def _originals(path: Path) -> bytes | None:
    """The events `path` declares erroneous that it does not hold itself, as a document
    of their own (each is its declaration without `errorDeclaration`, EPCIS 2.0
    §7.4.1.4): a ledger accepts a declaration only for an event it holds, and GS1's
    examples declare events recorded elsewhere."""
    doc = json.loads(path.read_bytes())
    events = doc["epcisBody"].get("eventList") or []  # query documents declare nothing
    held = {e.get("eventID") for e in events if "errorDeclaration" not in e}
    declared = [e for e in events if "errorDeclaration" in e and e.get("eventID") not in held]
    if not declared:
        return None
    originals = [{k: v for k, v in e.items() if k != "errorDeclaration"} for e in declared]
    return json.dumps({**doc, "epcisBody": {"eventList": originals}}).encode()


def _claims(path: Path) -> set[tuple[str, str]]:
    """What capturing `path` (after `_originals`) records once on a ledger."""
    found = set()
    for e in check_document(parse_json(path.read_bytes())).events:
        declares = "errorDeclaration" in e.event
        found.add(("declaration" if declares else "event", e.event["eventID"]))
        if declares:
            found.add(("event", e.event["eventID"]))  # its original, recorded first
    return found


def _ledgers_for(paths: list[Path]) -> list[list[Path]]:
    """Group the examples so that no ledger receives the same eventID twice: GS1's files
    share events (Example_9.6.1 appears in four of them), and a ledger records an event
    once. Every document is then captured on a ledger that does not hold its events."""
    groups: list[tuple[set[tuple[str, str]], list[Path]]] = []
    for path in paths:
        ids = _claims(path)
        for seen, members in groups:
            if not ids & seen:
                seen |= ids
                members.append(path)
                break
        else:
            groups.append((set(ids), [path]))
    return [members for _, members in groups]


def test_every_official_example_is_captured(lab: Consortium, start: Start) -> None:
    """As published; a document declaring events erroneous on a ledger holding them."""
    paths = sorted(EPCIS_EXAMPLES.rglob("*.jsonld"))
    assert len(paths) >= 40
    signers = {"lab": identity(lab, "lab", "gateway")}
    recorded = declarations = 0
    for group in _ledgers_for(paths):
        client = start(lab, capture_signers=signers)
        client.auth = SignedRequests(identity(lab, "lab", "client"))
        sdk = capturing(client, identity(lab, "lab", "client"))
        for path in group:
            originals = _originals(path)
            if originals is not None:
                assert finished(sdk, sdk.capture_http(originals))["success"], path.name
        jobs = [(path, sdk.capture_http(path.read_bytes())) for path in group]
        for path, job in jobs:
            job = finished(sdk, job)
            assert job["success"], (path.name, job["errors"])
            assert not job["running"] and job["finishedAt"]
            assert {t["state"] for t in job["transactions"]} == {"committed"}
            recorded += len(job["transactions"])
            declarations += _originals(path) is not None
            item = job["transactions"][-1]
            found = client.get(f"/events/{quote(item['eventID'], safe='')}")
            assert found.status_code == 200, item
            events = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            # an eventID names the event and, once declared erroneous, its declaration too
            transactions = {e["parktrace:ledger"]["parktrace:transaction"] for e in events}
            assert item["transaction"] in transactions
    assert recorded >= 56 and declarations >= 8


def _signed_post(client: TestClient, who: Identity, body: bytes, **headers: str) -> httpx.Response:
    request = client.build_request(
        "POST", "/capture", content=body, headers={"content-type": "application/ld+json", **headers}
    )
    sign_request(request, who, body)
    return client.send(request)


def test_capture_authentication(lab: Consortium, park: Consortium, start: Start) -> None:
    client = start(lab, capture_signers={"lab": identity(lab, "lab", "gateway")})
    body = (EPCIS_EXAMPLES / "Example_9.6.2-ObjectEvent.jsonld").read_bytes()
    me = identity(lab, "lab", "client")

    unsigned = client.post("/capture", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "unauthenticated"
    assert unsigned.headers["accept-signature"].startswith('pt=("@method"')
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert unsigned.json()["type"] == "epcisException:SecurityException"

    request = client.build_request("POST", "/capture", content=body)
    sign_request(request, me, body)
    request = client.build_request(
        "POST", "/capture", content=body.replace(b"2", b"3"), headers=dict(request.headers)
    )
    tampered = client.send(request)
    assert tampered.status_code == 401 and "digest" in tampered.json()["message"].lower()

    stranger = Identity(
        park.user("gannan-orchard-coop").key, park.user("gannan-orchard-coop").fingerprint
    )
    unknown = _signed_post(client, stranger, body)
    assert unknown.status_code == 401 and "not the fingerprint" in unknown.json()["message"]

    old = client.build_request("POST", "/capture", content=body)
    sign_request(old, me, body, created=datetime.now(UTC) - timedelta(hours=1))
    assert client.send(old).status_code == 401

    request = client.build_request(
        "POST", "/capture", content=body, headers={"content-type": "application/ld+json"}
    )
    sign_request(request, me, body)
    first = client.send(request)
    assert first.status_code == 202, first.text
    assert first.headers["location"] == f"/capture/{first.json()['captureID']}"
    replay = client.send(request)
    assert replay.status_code == 409 and "replay" in replay.json()["message"]


def test_capture_needs_a_delegated_signer_and_obeys_policy(park: Consortium, start: Start) -> None:
    orchard = identity(park, "gannan-orchard-coop")
    client = start(park, capture_signers={"gannan-orchard-coop": orchard})
    doc = {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T08:00:00+08:00",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": "2026-11-20T08:00:00+08:00",
                    "eventTimeZoneOffset": "+08:00",
                    "epcList": ["urn:epc:id:sgtin:0690123.400001.1"],
                    "action": "OBSERVE",
                    "bizStep": "inspecting",
                }
            ]
        },
    }
    body = json.dumps(doc).encode()
    refused = _signed_post(client, orchard, body)
    assert refused.status_code == 403 and refused.json()["error"] == "not_permitted"
    assert refused.json()["message"].startswith("epcisBody.eventList[0]")
    packer = identity(park, "ganzhou-packing-house")
    nobody = _signed_post(client, packer, body)
    assert (
        nobody.status_code == 403 and "delegated no capture certificate" in nobody.json()["message"]
    )


def test_invalid_documents_are_rejected_with_field_and_rule(lab: Consortium, start: Start) -> None:
    client = start(lab, capture_signers={"lab": identity(lab, "lab", "gateway")})
    me = identity(lab, "lab", "client")
    client.auth = SignedRequests(me)
    doc = parse_json((EPCIS_EXAMPLES / "Example_9.6.1-ObjectEvent.jsonld").read_bytes())
    doc["epcisBody"]["eventList"][1]["bizStep"] = "https://ref.gs1.org/cbv/BizStep-receiving"
    response = _signed_post(client, me, json.dumps(doc).encode())
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "epcisBody.eventList[1].bizStep" and body["rule"] == "cbv-bare-word"
    assert body["type"] == "epcisException:ValidationException"
    assert (
        client.get("/events").json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []
    )
    # proceed: the valid event is recorded, the job names the other
    job = _signed_post(
        client, me, json.dumps(doc).encode(), **{"GS1-Capture-Error-Behaviour": "proceed"}
    )
    assert job.status_code == 202
    job = finished(capturing(client, me), job.json())
    assert not job["success"] and len(job["transactions"]) == 1
    assert job["errors"][0]["eventIndex"] == 1 and job["errors"][0]["rule"] == "cbv-bare-word"
    for body, status, code in (
        (b"{}", 400, "invalid_epcis"),
        (b"not json", 400, "encoding_error"),
        (
            json.dumps({**doc, "@context": [CONTEXT, "https://x.example/c"]}).encode(),
            400,
            "invalid_epcis",
        ),
    ):
        response = _signed_post(client, me, body)
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
    wrong_type = client.build_request(
        "POST", "/capture", content=b"<xml/>", headers={"content-type": "application/xml"}
    )
    sign_request(wrong_type, me, b"<xml/>")
    assert client.send(wrong_type).status_code == 415


# -- the three park cases: SDK capture, queries, history ------------------------------------


def _doc(*events: dict) -> dict:
    return {
        "@context": [CONTEXT, {"ex": "https://ns.parktrace.example/ex/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T08:00:00+08:00",
        "epcisBody": {"eventList": list(events)},
    }


def _event(kind: str, minute: int, step: str, **fields: object) -> dict:
    return {
        "type": kind,
        "eventTime": f"2026-11-20T{8 + minute // 60:02d}:{minute % 60:02d}:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "bizStep": step,
        **fields,
    }


MASK = "urn:epc:id:sgtin:0690789.000003.{}"
BOX = "urn:epc:id:sscc:0690789.1000000001"
CARTON = "urn:epc:id:sscc:0690789.2000000001"
LOT = "urn:epc:class:lgtin:0690456.700002.{}"
FACTORY = "urn:epc:id:sgln:0690789.00001.0"


@pytest.fixture
def recorded(park: Consortium, start: Start) -> TestClient:
    """Masks into a box, the box into a carton, the carton shipped; two lots of
    notoginseng root processed into a lot of powder. Each producer signs its own events
    through the SDK."""
    client = start(park)
    client.auth = SignedRequests(identity(park, "market-supervision-bureau"))  # reads all
    steps = [
        ("ganzhou-mask-factory", _event("ObjectEvent", 0, "commissioning", action="ADD",
            epcList=[MASK.format(i) for i in (1, 2, 3)], readPoint={"id": FACTORY},
            disposition="active")),
        ("ganzhou-mask-factory", _event("AggregationEvent", 1, "packing", action="ADD",
            parentID=BOX, childEPCs=[MASK.format(1), MASK.format(2)])),
        ("ganzhou-mask-factory", _event("AggregationEvent", 2, "packing", action="ADD",
            parentID=CARTON, childEPCs=[BOX])),
        ("cold-chain-logistics", _event("ObjectEvent", 3, "shipping", action="OBSERVE",
            epcList=[CARTON], disposition="in_transit")),
        ("retail-pharmacy-chain", _event("ObjectEvent", 4, "receiving", action="OBSERVE",
            epcList=[CARTON])),
        ("retail-pharmacy-chain", _event("AggregationEvent", 5, "unpacking", action="DELETE",
            parentID=CARTON, childEPCs=[BOX])),
        ("retail-pharmacy-chain", _event("ObjectEvent", 6, "retail_selling", action="OBSERVE",
            epcList=[MASK.format(1)])),
        ("cold-chain-logistics", _event("ObjectEvent", 7, "shipping", action="OBSERVE",
            epcList=[CARTON])),
        ("wenshan-growers", _event("ObjectEvent", 10, "commissioning", action="ADD",
            quantityList=[{"epcClass": LOT.format("R1"), "quantity": 500, "uom": "KGM"},
                          {"epcClass": LOT.format("R2"), "quantity": 300, "uom": "KGM"}])),
        ("notoginseng-processor", _event("TransformationEvent", 20, "commissioning",
            transformationID="urn:uuid:7b1e0b5c-2f7e-4f55-9d57-3a2a1f0c9a01",
            inputQuantityList=[{"epcClass": LOT.format("R1"), "quantity": 500, "uom": "KGM"},
                               {"epcClass": LOT.format("R2"), "quantity": 300, "uom": "KGM"}],
            outputQuantityList=[{"epcClass": LOT.format("P1"), "quantity": 120, "uom": "KGM"}])),
        ("testing-centre", _event("ObjectEvent", 30, "inspecting", action="OBSERVE",
            quantityList=[{"epcClass": LOT.format("P1")}], disposition="conformant")),
    ]  # fmt: skip
    last = None
    for org, event in steps:
        sdk = capturing(client, identity(park, org))
        report = sdk.capture(_doc(event))
        assert not report.refused, report.refused
        last = report.accepted[0].tx_id
        # recorded under the producer's own certificate: its key signed the transaction
        status = sdk.wait(last, 10)
        assert status["state"] == "committed"
        signer = status["receipt"]["transaction"]["body"]["signer"]
        assert signer == park.user(org).fingerprint
    return client


def _events(client: TestClient, **params: str) -> list[dict]:
    response = client.get("/events", params=params)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert schema_problems(doc) == []  # the answer is a valid EPCISQueryDocument
    return doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def test_queries(recorded: TestClient) -> None:
    client = recorded
    assert len(_events(client, perPage="100")) == 11
    assert [e["bizStep"] for e in _events(client, EQ_bizStep="shipping")] == ["shipping"] * 2
    assert len(_events(client, MATCH_anyEPC=CARTON)) == 5
    # the Digital Link spelling of a mask's EPC finds the same events as its URN
    # (commissioned, packed into the box, sold)
    assert len(_events(client, MATCH_epc="https://id.gs1.org/01/00690789000034/21/1")) == 3
    assert len(_events(client, MATCH_epc=MASK.format(1))) == 3
    assert len(_events(client, MATCH_anyEPCClass=LOT.format("R1"))) == 2
    assert len(_events(client, EQ_disposition="in_transit|conformant")) == 2
    assert len(_events(client, EQ_readPoint=FACTORY)) == 1
    assert len(_events(client, eventType="AggregationEvent")) == 3
    window = _events(
        client, GE_eventTime="2026-11-20T08:03:00+08:00", LT_eventTime="2026-11-20T00:05:00Z"
    )
    assert [e["bizStep"] for e in window] == ["shipping", "receiving"]
    newest = _events(client, orderBy="eventTime", orderDirection="DESC", perPage="1")
    assert newest[0]["bizStep"] == "inspecting"
    assert all("recordTime" in e and "eventID" in e for e in _events(client))


def test_paging_follows_link_headers(recorded: TestClient) -> None:
    seen, url = [], "/events?perPage=4&orderBy=eventTime&orderDirection=ASC"
    while url:
        response = recorded.get(url)
        page = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        seen += [e["eventID"] for e in page]
        link = response.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
    assert len(seen) == len(set(seen)) == 11


def test_query_errors(recorded: TestClient) -> None:
    typo = recorded.get("/events", params={"EQ_bizstep": "shipping"})
    assert typo.status_code == 422 and typo.json()["field"] == "query.EQ_bizstep"
    bad_time = recorded.get("/events", params={"GE_eventTime": "yesterday"})
    assert bad_time.status_code == 400 and "GE_eventTime" in bad_time.json()["message"]
    assert recorded.get("/events", params={"nextPageToken": "x"}).status_code == 400
    assert recorded.get(f"/events/{quote('urn:uuid:nope', safe='')}").status_code == 404


def test_history_follows_containers_and_ingredients(recorded: TestClient) -> None:
    mask = recorded.get(f"/v1/products/{quote(MASK.format(1), safe='')}/history").json()
    steps = [(e["relation"], e["event"]["bizStep"]) for e in mask["events"]]
    assert steps == [
        ("self", "commissioning"),
        ("self", "packing"),  # into the box
        ("container", "packing"),  # the box into the carton
        ("container", "shipping"),  # the carton shipped, with the mask inside
        ("container", "receiving"),
        ("container", "unpacking"),  # the box taken out of the carton
        ("self", "retail_selling"),
    ]  # the carton's later shipment is not the mask's
    assert [c["identifier"] for c in mask["containers"]] == [BOX, CARTON]
    lone = recorded.get(f"/v1/products/{quote(MASK.format(3), safe='')}/history").json()
    assert [e["relation"] for e in lone["events"]] == ["self"]
    powder = recorded.get(f"/v1/products/{quote(LOT.format('P1'), safe='')}/history").json()
    steps = [(e["relation"], e["subject"], e["event"]["bizStep"]) for e in powder["events"]]
    assert steps == [
        ("input", LOT.format("R1"), "commissioning"),  # one event names both lots
        ("self", LOT.format("P1"), "commissioning"),  # the transformation
        ("self", LOT.format("P1"), "inspecting"),
    ]
    assert {i["identifier"] for i in powder["inputs"]} == {LOT.format("R1"), LOT.format("R2")}
    missing = recorded.get("/v1/products/urn:epc:id:sgtin:0.0.0/history")
    assert missing.status_code == 404


def test_sdk_capture_validates_locally_and_reports_each_event(
    park: Consortium, start: Start
) -> None:
    client = start(park)
    sdk = capturing(client, identity(park, "ganzhou-mask-factory"))
    good = _event("ObjectEvent", 0, "commissioning", action="ADD", epcList=[MASK.format(50)])
    bad = _event("ObjectEvent", 1, "commissioning", action="ADD", epcList=["not a uri"])
    denied = _event("ObjectEvent", 2, "inspecting", action="OBSERVE", epcList=[MASK.format(51)])
    rollback = sdk.capture(_doc(good, bad))
    assert not rollback.accepted and rollback.refused[0].label == "epcisBody.eventList[1]"
    assert rollback.refused[0].message.startswith("epcList[0]: ")  # the field, named once
    report = sdk.capture(_doc(good, bad, denied), behaviour="proceed")
    assert [a.label for a in report.accepted] == ["epcisBody.eventList[0]"]
    assert sorted(r.code for r in report.refused) == ["invalid_epcis", "not_permitted"]
    sdk.follow(report, 10)
    assert report.committed == 1
    again = sdk.capture(_doc(good), behaviour="proceed")
    assert [r.code for r in again.refused] == ["duplicate"]
    # An event too large for one transaction is refused on its own, not the document.
    huge = _event("ObjectEvent", 3, "commissioning", action="ADD", epcList=[MASK.format(52)])
    huge["ex:notes"] = "x" * 70_000
    small = _event("ObjectEvent", 4, "commissioning", action="ADD", epcList=[MASK.format(53)])
    mixed = sdk.capture(_doc(huge, small), behaviour="proceed")
    assert [r.code for r in mixed.refused] == ["too_large"] and len(mixed.accepted) == 1
    with pytest.raises(ApiClientError) as info:
        ParkTraceClient(http=client).submit(sdk.sign("epcis.event", {"event": {}}))
    assert info.value.status == 400 and info.value.code == "invalid_epcis"


# -- POST /events: one event, synchronous ---------------------------------------------------


class Gateway:
    """A node holding the lab's delegated capture certificate, and the lab's own EPCIS
    client posting single events to it."""

    def __init__(self, client: TestClient, me: Identity) -> None:
        self.client, self.me = client, me
        client.auth = SignedRequests(me)  # its queries too

    def post_event(self, event: object) -> httpx.Response:
        body = json.dumps(event).encode()
        request = self.client.build_request(
            "POST", "/events", content=body, headers={"content-type": "application/json"}
        )
        sign_request(request, self.me, body)
        return self.client.send(request)


@pytest.fixture
def gateway(lab: Consortium, start: Start) -> Gateway:
    client = start(lab, capture_signers={"lab": identity(lab, "lab", "gateway")})
    return Gateway(client, identity(lab, "lab", "client"))


def _one_event(name: str) -> dict:
    doc = json.loads((EPCIS_EXAMPLES / name).read_bytes())
    return {"@context": doc["@context"], **doc["epcisBody"]["eventList"][0]}


def test_a_single_event_is_captured_and_answered_once_committed(
    gateway: Gateway,
) -> None:
    client = gateway.client
    event = _one_event("Example_9.6.2-ObjectEvent.jsonld")
    created = gateway.post_event(event)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "committed"
    assert created.headers["GS1-EPCIS-Version"] == "2.0.0"
    found = client.get(created.headers["location"])
    assert found.status_code == 200, found.text
    events = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["eventID"] for e in events] == [created.json()["eventID"]]
    again = gateway.post_event(event)
    assert again.status_code == 409, again.text


def test_a_single_event_is_judged_by_the_capture_rules_and_named_in_its_own_terms(
    gateway: Gateway,
) -> None:
    client = gateway.client
    untimed = _one_event("Example_9.6.2-ObjectEvent.jsonld")
    del untimed["eventTime"]
    refused = gateway.post_event(untimed)
    assert refused.status_code == 400, refused.text
    assert "epcisBody" not in refused.text and "eventTime" in refused.text
    document = json.loads((EPCIS_EXAMPLES / "Example_9.6.2-ObjectEvent.jsonld").read_bytes())
    wrong = gateway.post_event(document)
    assert wrong.status_code == 400 and "/capture" in wrong.text, wrong.text
    unsigned = client.post("/events", json=untimed, auth=None)
    assert unsigned.status_code == 401, unsigned.text
