"""The official EPCIS 2.0 REST binding (`openapi.yaml` of GS1) walked against a real
`parktrace serve --solo` process over a socket: every path and method is tried with
real values from the ledger and reported implemented or missing; queries are answered
to signed members only, each seeing what the read rule allows; page tokens hold no
state on the node."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from devtools.cluster import free_ports
from ledger.consortium import Consortium
from sdk.signing import Identity, sign_request
from tests.localnet import end_process, start_solo
from tests.testdata import SHARED

BINDING = SHARED / "testdata" / "epcis" / "REST Bindings" / "openapi.yaml"
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MASKS, PACKER, REGULATOR = (
    "ganzhou-mask-factory",
    "ganzhou-packing-house",
    "market-supervision-bureau",
)
LOGISTICS = "cold-chain-logistics"
#: A GLN of the packing house (under its GS1 Company Prefix 6901234).
PACKER_GLN = "urn:epc:id:sgln:6901234.00001.0"
#: Operations of the binding this node does not implement, and why (none today).
MISSING: dict[tuple[str, str], str] = {}


@dataclass
class Node:
    url: str
    consortium: Path
    root: Path
    process: Any = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def identity(self, org: str) -> Identity:
        return Identity.from_consortium(self.consortium, org)

    def send(
        self, method: str, path: str, org: str | None = MASKS, body: Any = None, **headers: str
    ) -> httpx.Response:
        """A request to the node, signed (RFC 9421) by `org`'s member key unless None."""
        content = (
            b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        if body is not None:
            headers.setdefault("content-type", "application/json")
        request = self.http.build_request(method, self.url + path, content=content, headers=headers)
        if org is not None:
            sign_request(request, self.identity(org), content)
        return self.http.send(request)


def event(n: int, step: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:6c1f6f52-0000-4000-8000-{n:012d}",
        "eventTime": f"2026-11-20T08:{n % 60:02d}:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"urn:epc:id:sgtin:6907890.012345.{n}"],
        "action": "OBSERVE" if step != "commissioning" else "ADD",
        "bizStep": step,
        "disposition": "in_transit" if step == "shipping" else "active",
        "readPoint": {"id": "urn:epc:id:sgln:6907890.00001.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:6907890.00001.0"},
        **extra,
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T09:00:00.000+08:00",
        "epcisBody": {"eventList": list(events)},
    }


def capture(node: Node, org: str, *events: dict[str, Any]) -> dict[str, Any]:
    answer = node.send("POST", "/capture", org, document(*events))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    for _ in range(200):
        job = node.send("GET", f"/capture/{job['captureID']}", org).json()
        if not job["running"]:
            break
    assert job["success"], job
    return job


SHIPMENT = event(
    1, "shipping", destinationList=[{"type": "owning_party", "destination": PACKER_GLN}]
)
COMMISSIONING = event(2, "commissioning")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("binding")
    Consortium.sample(seed=b"binding tests").write(root / "consortium")
    port = free_ports(0)
    signers = ("--capture-signer", MASKS, "--capture-signer", PACKER)
    process = start_solo(root, root / "consortium", port, *signers)
    node = Node(f"http://127.0.0.1:{port}", root / "consortium", root, process)
    try:
        capture(node, MASKS, SHIPMENT, COMMISSIONING)
        yield node
    finally:
        node.http.close()
        end_process(process, 10)


@cache
def _binding() -> dict[str, Any]:
    """The binding, parsed once: it is 230 kB of YAML (~0.5 s a parse in pure Python)."""
    return yaml.load(BINDING.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _operations() -> list[tuple[str, str]]:
    spec = _binding()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "options", "patch", "head")
    ]


def _success(path: str, method: str) -> set[int]:
    responses = _binding()["paths"][path][method.lower()]["responses"]
    return {int(code) for code in responses if str(code).startswith("2")}


def _walk_order(op: tuple[str, str]) -> tuple[int, int, str]:
    """Create first, then read, then delete the innermost resource first."""
    method, path = op
    rank = {"POST": 0, "OPTIONS": 1, "GET": 2, "DELETE": 3}[method]
    return (rank, -len(path) if method == "DELETE" else 0, path)


def test_every_operation_of_the_official_binding_against_a_real_node(node: Node) -> None:
    operations = _operations()
    assert len(operations) == 63
    epc = quote("urn:epc:id:sgtin:6907890.012345.1", safe="")
    values = {
        "{eventID}": quote(SHIPMENT["eventID"], safe=""),
        "{eventType}": "ObjectEvent",
        "{epc}": epc,
        "{bizStep}": "shipping",
        "{bizLocation}": quote("urn:epc:id:sgln:6907890.00001.0", safe=""),
        "{readPoint}": quote("urn:epc:id:sgln:6907890.00001.0", safe=""),
        "{disposition}": "in_transit",
        "{queryName}": "walked",
    }
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/capture"): document(event(3, "shipping")),
        ("POST", "/events"): {"@context": [CONTEXT], **event(4, "shipping")},
        ("POST", "/queries"): {"name": "walked", "query": {"EQ_bizStep": ["shipping"]}},
        ("POST", "/queries/{queryName}/subscriptions"): {
            "dest": "http://127.0.0.1:9/never", "stream": True,
        },
    }  # fmt: skip
    report: dict[tuple[str, str], tuple[int, str]] = {}
    for method, path in sorted(operations, key=_walk_order):
        concrete = path
        for name, value in values.items():
            concrete = concrete.replace(name, value)
        answer = node.send(method, concrete, MASKS, bodies.get((method, path)))
        if method == "POST" and path == "/capture":
            values["{captureID}"] = answer.json()["captureID"]
        if method == "POST" and path.endswith("/subscriptions"):
            values["{subscriptionID}"] = answer.json()["subscriptionID"]
        if method == "GET" and path == "/events":
            token = answer.headers.get("link", "").partition("nextPageToken=")[2].partition("&")[0]
            values["{token}"] = token or _token(node)
        ok = answer.status_code in _success(path, method)
        report[(method, path)] = (answer.status_code, "implemented" if ok else answer.text[:200])
    lines = [f"{m:7} {p:55} {s} {w}" for (m, p), (s, w) in sorted(report.items())]
    print("\n".join(lines))
    implemented = [op for op, (_, what) in report.items() if what == "implemented"]
    missing = {op: report[op] for op in report if op not in implemented}
    print(f"binding: {len(implemented)} of {len(operations)} operations implemented")
    assert set(missing) == set(MISSING), missing
    assert len(implemented) >= 60


def _token(node: Node) -> str:
    answer = node.send("GET", "/events?perPage=1", REGULATOR)
    return answer.headers["link"].partition("nextPageToken=")[2].partition("&")[0]


def test_options_tell_versions_extensions_and_capture_limits(node: Node) -> None:
    answer = node.send("OPTIONS", "/capture", None)
    assert answer.status_code == 204
    assert answer.headers["GS1-EPCIS-Version"] == "2.0.0"
    assert answer.headers["GS1-CBV-Version"] == "2.0.0"
    assert answer.headers["GS1-Extensions"].startswith("parktrace=")
    assert int(answer.headers["GS1-EPCIS-Capture-Limit"]) == 10_000
    assert int(answer.headers["GS1-EPCIS-Capture-File-Size-Limit"]) > 0
    assert set(answer.headers["Allow"].split(", ")) == {"OPTIONS", "GET", "POST"}
    refused = node.send("GET", "/", None, **{"GS1-EPCIS-Min": "3.0.0"})
    assert refused.status_code == 406


def test_an_unauthenticated_query_is_refused(node: Node) -> None:
    for path in (
        "/events",
        "/eventTypes",
        "/epcs",
        "/queries",
        f"/events/{quote(SHIPMENT['eventID'], safe='')}",
    ):
        answer = node.send("GET", path, None)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["error"] == "unauthenticated"
        assert "Accept-Signature" in answer.headers


def _ids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    found = answer.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return {e["eventID"] for e in found}


def test_each_member_sees_what_the_read_rule_allows(node: Node) -> None:
    ours = {SHIPMENT["eventID"], COMMISSIONING["eventID"]}
    assert ours <= _ids(node.send("GET", "/events", MASKS))
    assert ours <= _ids(node.send("GET", "/events", REGULATOR))
    # The packing house is the shipment's destination: it sees that one, not the other.
    packer = _ids(node.send("GET", "/events", PACKER))
    assert SHIPMENT["eventID"] in packer and COMMISSIONING["eventID"] not in packer
    assert not ours & _ids(node.send("GET", "/events", LOGISTICS))
    hidden = quote(COMMISSIONING["eventID"], safe="")
    assert node.send("GET", f"/events/{hidden}", LOGISTICS).status_code == 404
    assert node.send("GET", "/bizSteps", LOGISTICS).json()["member"] == []
    assert "commissioning" in node.send("GET", "/bizSteps", MASKS).json()["member"]


def test_discovery_lists_the_values_the_ledger_holds(node: Node) -> None:
    steps = node.send("GET", "/bizSteps", MASKS).json()
    assert {"shipping", "commissioning"} <= set(steps["member"]) and steps["type"] == "Collection"
    assert "ObjectEvent" in node.send("GET", "/eventTypes", MASKS).json()["member"]
    epcs = node.send("GET", "/epcs", MASKS).json()["member"]
    assert "https://id.gs1.org/01/06907890123458/21/1" in epcs
    found = node.send("GET", "/bizSteps/commissioning/events", MASKS)
    assert _ids(found) == {COMMISSIONING["eventID"]}
    assert node.send("GET", "/bizSteps/never_used", MASKS).status_code == 404


def test_epc_format_is_negotiated(node: Node) -> None:
    path = f"/events/{quote(SHIPMENT['eventID'], safe='')}"
    default = node.send("GET", path, MASKS).json()
    epcs = default["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"]
    assert epcs == ["https://id.gs1.org/01/06907890123458/21/1"]
    urn = node.send("GET", path, MASKS, **{"GS1-EPC-Format": "Always_EPC_URN"}).json()
    epcs = urn["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"]
    assert epcs == ["urn:epc:id:sgtin:6907890.012345.1"]
    by_link = node.send("GET", "/events?MATCH_epc=https://id.gs1.org/01/06907890123458/21/1", MASKS)
    assert SHIPMENT["eventID"] in _ids(by_link)


def test_a_page_token_holds_no_state_on_the_node(node: Node, tmp_path: Path) -> None:
    """A token is the query and a position: it is answered the same by a node that never
    saw it minted (the same node restarted on a copy of the ledger stands for another)."""
    first = node.send("GET", "/events?perPage=1&orderBy=eventTime&orderDirection=ASC", REGULATOR)
    token = first.headers["link"].partition("nextPageToken=")[2].partition("&")[0]
    expected = _ids(node.send("GET", f"/events?perPage=1&nextPageToken={token}", REGULATOR))
    other = tmp_path / "other"
    other.mkdir()
    with (
        sqlite3.connect(node.root / "node.db") as source,
        sqlite3.connect(other / "node.db") as copy,
    ):
        source.backup(copy)
    port = free_ports(0)
    process = start_solo(other, node.consortium, port)
    try:
        elsewhere = Node(f"http://127.0.0.1:{port}", node.consortium, other)
        assert (
            _ids(elsewhere.send("GET", f"/events?perPage=1&nextPageToken={token}", REGULATOR))
            == expected
        )
        assert elsewhere.send("DELETE", f"/nextPageToken/{token}", REGULATOR).status_code == 204
        assert elsewhere.send("GET", "/events?nextPageToken=nonsense", REGULATOR).status_code == 400
    finally:
        end_process(process, 10)
