"""GS1 check digits are a block rule: a GTIN, SSCC or GLN with a wrong one is refused with
a named rule wherever an event names it, through /v1/transactions and EPCIS /capture
(in-process, FastAPI TestClient), and in a proposal judged by a validator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import ApiSettings
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain
from nodes.solo import SoloNode
from sdk.signing import Identity, sign_request
from tests.chains import judge
from traceability.epcis.problems import EpcisValidationError

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
FACTORY = "ganzhou-mask-factory"
GOOD_GTIN, BAD_GTIN = "06907890000346", "06907890000347"
GOOD_GLN, BAD_GLN = "6907890000018", "6907890000019"
GOOD_SSCC, BAD_SSCC = "169078900000000114", "169078900000000115"


def event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"https://id.gs1.org/01/{GOOD_GTIN}/21/M1"],
        "action": "ADD",
        "bizStep": "commissioning",
        "bizLocation": {"id": f"https://id.gs1.org/414/{GOOD_GLN}"},
        **fields,
    }


def aggregation(parent: str) -> dict[str, Any]:
    return event(
        type="AggregationEvent",
        parentID=f"https://id.gs1.org/00/{parent}",
        childEPCs=[f"https://id.gs1.org/01/{GOOD_GTIN}/21/M2"],
        bizStep="packing",
        epcList=None,
    )


#: (event, field of the refusal, rule): one wrong digit in each place an event names a key.
BAD = [
    (event(epcList=[f"https://id.gs1.org/01/{BAD_GTIN}/21/M1"]), "epcList[0]", "gtin-check-digit"),
    (
        event(quantityList=[{"epcClass": f"https://res.example/01/{BAD_GTIN}/10/L1"}]),
        "quantityList[0].epcClass",
        "gtin-check-digit",
    ),
    (
        event(bizLocation={"id": f"https://id.gs1.org/414/{BAD_GLN}"}),
        "bizLocation.id",
        "gln-check-digit",
    ),
    (
        event(readPoint={"id": f"https://id.gs1.org/414/{BAD_GLN}/254/3"}),
        "readPoint.id",
        "gln-check-digit",
    ),
    (
        event(
            destinationList=[
                {"type": "owning_party", "destination": f"https://id.gs1.org/414/{BAD_GLN}"}
            ]
        ),
        "destinationList[0].destination",
        "gln-check-digit",
    ),
    (aggregation(BAD_SSCC), "parentID", "sscc-check-digit"),
]


def _clean(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if v is not None}


def identity(park: Consortium, org: str) -> Identity:
    holder = park.user(org)
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint)


@pytest.fixture(scope="module")
def park() -> Consortium:
    """Genesis just before now: transactions stamped now are within every validity."""
    return Consortium.sample(seed=b"check digit tests")


@pytest.fixture
def client(park: Consortium, tmp_path: Path) -> Iterator[TestClient]:
    node = SoloNode(
        park.genesis,
        park.validator_keys,
        Store(f"sqlite:///{tmp_path / 'node.db'}"),
        block_interval=0.02,
    )
    signers = {FACTORY: identity(park, FACTORY)}
    app = create_app(node, settings=ApiSettings(background=(node.run,), capture_signers=signers))
    with TestClient(app) as running:
        yield running


def submit(park: Consortium, client: TestClient, e: dict[str, Any]) -> Any:
    payload = {"event": {"@context": [CONTEXT], **_clean(e)}}
    tx = park.sign_tx(FACTORY, "epcis.event", payload)
    return client.post("/v1/transactions", json=tx.to_json())


@pytest.mark.parametrize(("bad", "field", "rule"), BAD, ids=[b[1] for b in BAD])
def test_a_wrong_check_digit_is_refused_at_submission(
    park: Consortium, client: TestClient, bad: dict[str, Any], field: str, rule: str
) -> None:
    response = submit(park, client, bad)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["rule"] == rule and body["field"] == f"body.payload.event.{field}", body
    assert "check digit" in body["message"]


def test_right_check_digits_are_accepted(park: Consortium, client: TestClient) -> None:
    assert submit(park, client, event()).status_code == 202
    assert submit(park, client, aggregation(GOOD_SSCC)).status_code == 202


def _capture(client: TestClient, who: Identity, events: list[dict[str, Any]]) -> Any:
    doc = {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T08:00:00+08:00",
        "epcisBody": {"eventList": [_clean(e) for e in events]},
    }
    body = json.dumps(doc).encode()
    request = client.build_request(
        "POST", "/capture", content=body, headers={"content-type": "application/ld+json"}
    )
    sign_request(request, who, body)
    return client.send(request)


def test_a_wrong_check_digit_is_refused_by_capture(park: Consortium, client: TestClient) -> None:
    who = identity(park, FACTORY)
    bad_gln = event(bizLocation={"id": f"https://id.gs1.org/414/{BAD_GLN}"})
    response = _capture(client, who, [event(), bad_gln])
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "epcisBody.eventList[1].bizLocation.id"
    assert body["rule"] == "gln-check-digit"
    assert _capture(client, who, [event()]).status_code == 202


def test_a_proposal_with_a_wrong_check_digit_is_refused(park: Consortium, chain: DevChain) -> None:
    bad, _, rule = BAD[0]
    payload = {"event": {"@context": [CONTEXT], **_clean(bad)}}
    tx = park.sign_tx(FACTORY, "epcis.event", payload, chain.next_time())
    with pytest.raises(EpcisValidationError) as refused:
        judge(chain, [tx])
    assert refused.value.rule == rule
