"""Arbitrary payloads of every transaction type (a node's own batch of consumer
observations included) through the whole single-node path, over HTTP: admission (`POST
/v1/transactions`), proposal and decision (the dev node's `produce`), the store, the
event index (`/events`), product history, the regulator's trace and recall views, the
resolver's page and JSON for every identifier-like string of the payload, and
verification of the chain.

The node is the one `parktrace serve --solo` runs (`SoloNode` under `create_app`), over a
store holding the park's three cases, so that fuzzed events meet real histories. It lives
for the whole run, as a node does: what one example commits, the next is judged against.

Whatever arrives, every answer is below 500, a refusal is a typed error, a block always
comes out with the canary transaction each example sends alongside, and the chain
verifies."""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from api.app import create_app
from api.codes.service import CodesSettings, install
from api.histories import Case, record_cases
from api.services import ApiSettings
from devtools.samples import sample_event
from ledger import codec
from ledger.consortium import Consortium
from ledger.errors import LedgerError
from ledger.identity import Credential
from ledger.membership import Membership
from ledger.store import Store
from ledger.timefmt import now
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.config import ApiLimits
from nodes.solo import SoloNode
from sdk.signing import Identity, sign_request
from traceability.codes.digital_link import DigitalLink
from traceability.codes.observations import Photo
from traceability.codes.sealing import ResolverKey
from traceability.validity import trace_rules

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"fuzz the node path")
REGULATOR = "market-supervision-bureau"
#: Signs with a validator node's own key (what a node's batch of observations is).
NODE = "validator node"
#: Who signs a payload of each type when the policy allows no better-placed member.
DEFAULT_SIGNER = {
    "epcis.event": "gannan-orchard-coop",
    "codes.issue": "gannan-orchard-coop",
    "recall": REGULATOR,
    "codes.scans": NODE,
}
MEMBERSHIP_TYPES = (
    "membership.add_org",
    "membership.revoke",
    "membership.set_validators",
    "membership.rotate_key",
)
TX_TYPES = ("epcis.event", "codes.issue", "recall", "codes.scans", *MEMBERSHIP_TYPES)
#: Most identifier-like strings of one payload that are looked up everywhere.
LOOKUPS_PER_EXAMPLE = 4


@dataclass(frozen=True)
class Template:
    """A payload as a member would send it (the park's own, or a membership change of the
    right shape); the fuzz mutates it."""

    tx_type: str
    org: str
    payload: dict[str, Any]


@dataclass
class NodePath:
    park: Consortium
    node: SoloNode
    client: TestClient
    regulator: Identity
    templates: list[Template]
    identifiers: list[str]
    examples: int = 0


def _identity(park: Consortium, org: str) -> Identity:
    holder = park.user(org)
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint, Credential.from_pem(holder.certificate))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "@context":  # namespaces, not things a user looks up
                yield from _strings(key)
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def identifier_like(payload: Any) -> list[str]:
    """Strings of the payload that a user could look up: EPCs, classes, lots, links."""
    found = [
        s
        for s in _strings(payload)
        if s.startswith(("urn:epc:", "urn:uuid:", "http://", "https://")) or "/01/" in s
    ]
    return list(dict.fromkeys(found))


def _templates(park: Consortium, cases: dict[str, Case]) -> list[Template]:
    out = [
        Template(step.tx.type, step.org, step.tx.payload)
        for case in cases.values()
        for step in case.steps
    ]
    lot = cases["notoginseng"].batch.payload()["lot"]
    out.append(Template("recall", REGULATOR, {"lot": lot, "reason": "lead above the limit"}))
    out.append(Template("codes.scans", NODE, _observations(cases["mask"].codes[0])))
    _, fingerprint = park.user_key("gannan-orchard-coop")
    out += [
        Template(
            "membership.revoke",
            REGULATOR,
            {"change": {"certificate": "ab" * 32, "reason": "left the park"}, "approvals": []},
        ),
        Template(
            "membership.rotate_key",
            REGULATOR,
            {
                "change": {"certificate": fingerprint, "new_certificate": "-----BEGIN"},
                "approvals": [],
            },
        ),
        Template(
            "membership.set_validators",
            REGULATOR,
            {"change": {"previous": "00" * 32, "validators": []}, "approvals": []},
        ),
        Template(
            "membership.add_org",
            REGULATOR,
            {
                "change": {
                    "organization": {
                        "id": "ganzhou-tea-coop",
                        "name": "Ganzhou Tea Cooperative",
                        "name_zh": "赣州茶叶合作社",
                        "roles": ["producer"],
                        "certificates": [],
                    }
                },
                "approvals": [],
            },
        ),
    ]
    return out


def _observations(code: DigitalLink) -> dict[str, Any]:
    """A node's batch: a scan, the region added to it, and a report with a photo."""
    at = "2026-11-20T01:00:00.000Z"
    image = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(image, "JPEG")
    photo = Photo(image.getvalue()).to_json()
    return {
        "scans": [
            {"id": "a" * 32, "code": code.instance_id, "at": at, "region": None, "channel": "web"}
        ],
        "regions": [{"scan": "a" * 32, "code": code.instance_id, "at": at, "region": "CN-GD"}],
        "reports": [
            {
                "id": "b" * 32,
                "code": code.lot_id,
                "at": at,
                "region": "ZZ",
                "note": "印刷模糊",
                "photo": photo,
            }
        ],
    }


@pytest.fixture(scope="module")
def node_path(park: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodePath]:
    db = tmp_path_factory.mktemp("fuzz-node") / "node.db"
    store = Store(f"sqlite:///{db}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    store.close()
    store = Store(f"sqlite:///{db}")
    node = SoloNode(park.genesis, park.validator_keys, store)
    # What `serve --solo` serves, with the codes settings it would read from the environment;
    # one client sends every request, so it is not held to the per-client request rate.
    app = create_app(node, settings=ApiSettings(limits=ApiLimits(rate=0)))
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,)))
    known = [code.uri(HOST) for case in cases.values() for code in case.codes[:2]]
    known += [s for t in _templates(park, cases) for s in identifier_like(t.payload)]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield NodePath(
            park,
            node,
            client,
            _identity(park, REGULATOR),
            _templates(park, cases),
            list(dict.fromkeys(known)),
        )
    report = verify_store(store, park.genesis, rules=trace_rules)
    store.close()
    assert report.ok, report.problem


# -- what is sent ----------------------------------------------------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
WEIRD_IDENTIFIERS = st.sampled_from(
    [
        "https://id.gs1.org/01/",
        "https://id.gs1.org/01/00000000000000",
        "https://id.gs1.org/01/06901234000122/21/",
        "https://id.gs1.org/01/06901234000122/10/%ZZ",
        "https://id.gs1.org/01/06901234000122/21/a/b/c?x=1#f",
        "https://id.parktrace.example/01/09506000134352/10/" + "L" * 200,
        "urn:epc:id:sgtin:",
        "urn:epc:id:sgtin:0690123.400012.999999999999999999999",
        "urn:epc:id:sscc:0690789.",
        "urn:epc:class:lgtin:0690123.400012.",
        "urn:epc:id:sgln:0690123.00001.0",
        "urn:uuid:not-a-uuid",
        "/01/%2e%2e/%2e%2e",
        "https://id.gs1.org/01/0690123400012\u00e9/21/\u0000",
    ]
)


def _identifiers(world: NodePath) -> st.SearchStrategy[str]:
    generated = st.builds(
        lambda base, suffix: base + suffix,
        st.sampled_from(["https://id.gs1.org/01/", "urn:epc:id:sgtin:", "urn:epc:class:lgtin:"]),
        st.text(max_size=24),
    )
    known = st.sampled_from(world.identifiers)
    return st.one_of(known, known, WEIRD_IDENTIFIERS, generated)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _is_identifier(value: Any) -> bool:
    return isinstance(value, str) and bool(identifier_like(value))


def _mutate(payload: Any, data: st.DataObject, world: NodePath) -> Any:
    """One change at a random place: point an identifier elsewhere (what most often still
    commits, and then meets the index, history and resolver), replace a value, drop a key
    or add one."""
    values = JSON | _identifiers(world)
    paths = [p for p in _paths(payload) if p]
    if not paths:
        return data.draw(values)
    operation = data.draw(st.sampled_from(["identifier", "identifier", "replace", "drop", "add"]))
    if operation == "identifier":
        paths = [p for p in paths if _is_identifier(_at(payload, p))] or paths
        values = _identifiers(world)
    path = data.draw(st.sampled_from(paths))
    parent = _at(payload, path[:-1])
    if operation == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif operation == "add" and isinstance(parent, dict):
        key = data.draw(
            st.sampled_from(sorted({*parent, "type", "epcList", "@context"})) | st.text(max_size=10)
        )
        parent[key] = data.draw(values)
    else:
        parent[path[-1]] = data.draw(values)
    return payload


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _fresh(template: Template, data: st.DataObject) -> Any:
    """The template's payload with new ids where the ledger wants unique ones (an event's
    eventID, a code batch's id), so that it is not refused as a duplicate."""
    payload = copy.deepcopy(template.payload)
    if template.tx_type == "epcis.event" and isinstance(payload.get("event"), dict):
        payload["event"]["eventID"] = f"urn:uuid:{data.draw(st.uuids(version=4))}"
    if template.tx_type == "codes.issue":
        payload["batch"] = data.draw(st.uuids(version=4)).hex
    if template.tx_type == "codes.scans":
        for entry in (*payload["scans"], *payload["reports"]):
            entry["id"] = data.draw(st.uuids(version=4)).hex
    return payload


def _signer(
    park: Consortium, membership: Membership, tx_type: str, payload: Any, first: str
) -> str:
    """A member whose roles the write policy lets record this payload (else `first`)."""
    if first == NODE:
        return NODE
    for org in dict.fromkeys([first, *(org for org, _ in park.users)]):
        member = membership.member(park.user_key(org)[1])
        if member is None:
            continue
        try:
            membership.policy.check(tx_type, payload, member.roles, org)
        except Exception:  # the node judges it properly; here it only picks a signer
            continue
        return org
    return first


def envelope(park: Consortium, org: str, tx_type: str, payload: Any) -> dict[str, Any]:
    """A transaction's wire form signed by `org` over any JSON payload (the SDK signs
    objects only; the node must cope with whatever bytes arrive)."""
    if org == NODE:
        validator = park.genesis.validators[0][0].id
        key = park.validator_keys[validator]
        fingerprint = park.genesis.validators[0][1].fingerprint
    else:
        key, fingerprint = park.user_key(org)
    body = {
        "chain_id": park.genesis.chain_id,
        "type": tx_type,
        "payload": payload,
        "signer": fingerprint,
        "timestamp": now(),
        "nonce": codec.b64encode(uuid.uuid4().bytes),
    }
    try:
        signature = key.sign(codec.domain_bytes("tx", body))
    except (LedgerError, ValueError, TypeError):  # not canonically encodable: sign nothing
        signature = key.sign(b"")
    return {"body": body, "signature": {"scheme": key.scheme, "value": codec.b64encode(signature)}}


def canary(park: Consortium, label: str, **fields: Any) -> dict[str, Any]:
    """A good event on a lot of its own: it must commit whatever else is in the block."""
    org, payload = sample_event(0)
    event = payload["event"] | fields
    payload["event"] = event
    event["eventID"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, label)}"
    event["quantityList"][0]["epcClass"] = (
        f"https://id.parktrace.example/01/06901234000016/10/{label}"
    )
    return envelope(park, org, "epcis.event", payload)


# -- what is checked -------------------------------------------------------------------------
def answered(response: httpx.Response, what: str) -> httpx.Response:
    """Below 500; a refusal carries its type (JSON error code, or the resolver's page)."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text, what
    if response.status_code >= 400:
        media = response.headers.get("content-type", "")
        if "json" in media:
            body = response.json()
            assert isinstance(body, dict) and ("error" in body or "type" in body), (what, body)
        else:
            assert media.startswith("text/html"), (what, media)
    return response


def regulator_get(world: NodePath, path: str, **params: str) -> httpx.Response:
    request = world.client.build_request("GET", path, params=params)
    sign_request(request, world.regulator, b"")
    return world.client.send(request)


def look_up(world: NodePath, identifier: str) -> None:
    """Everything a user can ask about one identifier."""
    client = world.client
    escaped = quote(identifier, safe="")
    answered(client.get(f"/v1/products/{escaped}/history"), f"history of {identifier!r}")
    for name in ("MATCH_anyEPC", "MATCH_anyEPCClass"):
        answered(client.get("/events", params={name: identifier}), f"/events {name}")
    answered(client.get(f"/events/{escaped}"), f"event {identifier!r}")
    for path in ("/v1/audit/trace/backward", "/v1/audit/trace/forward", "/v1/audit/recalls/status"):
        answered(regulator_get(world, path, identifier=identifier), f"{path} {identifier!r}")
    answered(regulator_get(world, "/v1/audit/recalls/plan", lot=identifier), "recall plan")
    if "/01/" in identifier:
        link = "/01/" + quote(identifier.split("/01/", 1)[1], safe="/")
        answered(client.get(link), f"resolver page {link}")
        answered(client.get(link, headers={"Accept": "application/json"}), f"resolver JSON {link}")
        answered(client.get(link, params={"linkType": "all"}), f"linkset {link}")


def _payloads(world: NodePath, tx_type: str) -> st.SearchStrategy[tuple[str, Any]]:
    """(preferred signer, payload) of `tx_type`: a template mutated a few times (mostly),
    or any JSON."""
    templates = [t for t in world.templates if t.tx_type == tx_type]

    @st.composite
    def mutated(draw: st.DrawFn) -> tuple[str, Any]:
        template = draw(st.sampled_from(templates))
        data = draw(st.data())
        payload = _fresh(template, data)
        for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
            payload = _mutate(payload, data, world)
        return template.org, payload

    arbitrary = st.tuples(
        st.just(DEFAULT_SIGNER.get(tx_type, REGULATOR)),
        JSON | st.dictionaries(st.sampled_from(["event", "change", "lot", "batch"]), JSON),
    )
    return st.one_of(mutated(), mutated(), arbitrary)


#: Examples per type: events have the most to meet after commit (index, history, resolver).
EXAMPLES = {"epcis.event": 30, "codes.issue": 10, "recall": 10, "codes.scans": 12} | dict.fromkeys(
    MEMBERSHIP_TYPES, 6
)


@pytest.mark.parametrize("tx_type", TX_TYPES)
def test_arbitrary_payloads_meet_only_typed_refusals_on_the_whole_path(
    node_path: NodePath, tx_type: str
) -> None:
    @settings(
        max_examples=EXAMPLES[tx_type],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @seed(20261202)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        one_example(node_path, tx_type, data)

    example()
    # Everything committed meanwhile still verifies, as the regulator's API and the CLI see it.
    report = answered(regulator_get(node_path, "/v1/audit/verify"), "verify").json()
    assert report["ok"], report["problem"]


def one_example(world: NodePath, tx_type: str, data: st.DataObject) -> None:
    """Submit one fuzzed transaction and a canary, commit, then ask about everything."""
    world.examples += 1
    first, payload = data.draw(_payloads(world, tx_type), label="signer and payload")
    org = _signer(world.park, world.node.membership, tx_type, payload, first)
    client = world.client

    sent = envelope(world.park, org, tx_type, payload)
    submitted = answered(client.post("/v1/transactions", json=sent), "submission")
    good = canary(world.park, f"fuzz-canary-{world.examples}")
    assert answered(client.post("/v1/transactions", json=good), "canary").status_code == 202

    world.node.produce()  # propose, decide, store: what the dev node's loop does
    ids = [_tx_id(good)]
    if submitted.status_code == 202:
        ids.append(submitted.json()["id"])
    states = answered(client.post("/v1/transactions/status", json={"ids": ids}), "statuses")
    found = {item["id"]: item["state"] for item in states.json()["statuses"]}
    assert found.pop(ids[0]) == "committed", "the node stopped committing good work"
    assert set(found.values()) <= {"committed", "rejected"}, found  # decided, one way or other
    outcome = next(iter(found.values()), submitted.json().get("error"))
    event(f"{tx_type}: {outcome}")

    # What follows the store: the index, history, traces, the resolver.
    answered(
        client.get("/events", params={"orderBy": "recordTime", "orderDirection": "DESC"}), "/events"
    )
    answered(client.get("/v1/chain"), "/v1/chain")
    answered(regulator_get(world, "/v1/audit/recalls"), "recalls")
    answered(regulator_get(world, "/v1/audit/reports"), "consumer reports")
    for identifier in identifier_like(payload)[:LOOKUPS_PER_EXAMPLE]:
        look_up(world, identifier)


def _tx_id(wire: dict[str, Any]) -> str:
    return Transaction.from_json(wire).id


# -- what the fuzz found -------------------------------------------------------------------
def test_an_event_type_that_is_no_string_is_refused_not_a_server_error(
    node_path: NodePath,
) -> None:
    for kind in ([], {}, ["ObjectEvent"]):
        sent = canary(node_path.park, f"typed-{type(kind).__name__}-{len(kind)}", type=kind)
        response = answered(node_path.client.post("/v1/transactions", json=sent), "submission")
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_epcis", response.text


def test_a_large_integral_number_commits_and_the_chain_still_verifies(
    node_path: NodePath,
) -> None:
    """JCS prints this double as plain digits, which read back as an integer beyond 2^53:
    such a transaction was admitted and committed, and then the chain no longer verified
    (nor could the node restart on it)."""
    world = node_path
    sent = canary(world.park, "large-number", **{"ex:reading": -5.930487043246882e16})
    response = answered(world.client.post("/v1/transactions", json=sent), "submission")
    assert response.status_code == 202, response.text
    world.node.produce()
    states = world.client.post("/v1/transactions/status", json={"ids": [_tx_id(sent)]}).json()
    assert states["statuses"][0]["state"] == "committed", states
    report = answered(regulator_get(world, "/v1/audit/verify"), "verify").json()
    assert report["ok"], report["problem"]
    assert verify_store(world.node.store, world.park.genesis, rules=trace_rules).ok
