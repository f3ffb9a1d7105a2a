"""A recall reaches a unit however it is spelled: the QR code's Digital Link with the lot
before the serial, the short `/01/…/21/…` form, another resolver's host over http with
legacy short names, and the EPC URN are one mask. Refused at admission, in a proposal
judged by another validator, and by `parktrace verify` over a store written directly; and
a store keyed by an earlier version (identifiers as spelled) is re-keyed and goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ledger.consortium import Consortium
from ledger.errors import LedgerError
from ledger.identifiers import AS_SPELLED
from ledger.store import Store
from ledger.store.store import INDEX_META
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.devchain import DevChain
from nodes.service import NodeCore
from tests.chains import object_event, refused_everywhere, write_behind_the_nodes_back
from traceability.identifiers import PRODUCT_INDEX, canonical_key
from traceability.recall import RecalledError
from traceability.validity import trace_rules

ROOT = Path(__file__).resolve().parent.parent
GTIN, LOT, SERIAL = "06907890000346", "KN95-261112-L3", "7GDYEY1GW29XR9EG"
MASK = {
    "qr": f"https://id.parktrace.example/01/{GTIN}/10/{LOT}/21/{SERIAL}?11=261112&17=291111",
    "short": f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}",
    "urn": f"urn:epc:id:sgtin:6907890.000034.{SERIAL}",
    "other host": f"http://resolver.ganzhou-mask.example/gtin/6907890000346/lot/{LOT}/ser/{SERIAL}",
}
LOT_URN = f"urn:epc:class:lgtin:6907890.000034.{LOT}"
BOX = "urn:epc:id:sscc:6907890.1000000011"
BOX_LINK = "https://id.gs1.org/00/169078900000000114"
FACTORY, RETAILER, REGULATOR = (
    "ganzhou-mask-factory",
    "retail-pharmacy-chain",
    "market-supervision-bureau",
)


def event(label: str, step: str, **fields: Any) -> dict[str, Any]:
    return object_event(label, **{"action": "OBSERVE", "bizStep": step, **fields})


def packing(label: str, child: str) -> dict[str, Any]:
    return event(
        label, "packing", type="AggregationEvent", action="ADD", parentID=BOX, childEPCs=[child]
    )


def signed(park: Consortium, chain: DevChain, org: str, tx_type: str, payload: Any) -> Transaction:
    return park.sign_tx(org, tx_type, payload, chain.next_time())


def sale(park: Consortium, chain: DevChain, spelling: str) -> Transaction:
    selling = event(f"sale {spelling}", "retail_selling", epcList=[spelling])
    return signed(park, chain, RETAILER, "epcis.event", {"event": selling})


def recall(park: Consortium, chain: DevChain, **payload: Any) -> Transaction:
    body = {"lot": LOT_URN, "reason": "filtration below GB 2626-2019", **payload}
    return signed(park, chain, REGULATOR, "recall", body)


@pytest.mark.parametrize("named", sorted(MASK))
@pytest.mark.parametrize("sold", sorted(MASK))
def test_a_recalled_mask_is_refused_in_every_spelling(
    park: Consortium, chain: DevChain, named: str, sold: str
) -> None:
    chain.commit_block([recall(park, chain, units=[MASK[named]])])
    report = refused_everywhere(chain, sale(park, chain, MASK[sold]), RecalledError, "is recalled")
    assert report.problem is not None and "recalled" in report.problem.what


def test_parktrace_verify_refuses_a_sale_written_into_the_store(
    park: Consortium, chain: DevChain, tmp_path: Path
) -> None:
    assert chain.store is not None
    chain.commit_block([recall(park, chain, units=[MASK["short"]])])
    write_behind_the_nodes_back(chain, [sale(park, chain, MASK["qr"])])
    chain.store.close()
    result = subprocess.run(
        [sys.executable, "-m", "cli", "verify", "--db", str(tmp_path / "node.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED at height 2" in result.stderr and "recalled" in result.stderr


@pytest.mark.parametrize("spelling", sorted(MASK))
def test_a_box_packed_before_the_recall_is_traced_from_any_spelling(
    park: Consortium, chain: DevChain, spelling: str
) -> None:
    """The recall reads history through the store's product index: the mask packed under
    one spelling is found from another, and its box (named as a Digital Link) follows."""
    chain.commit_block(
        [signed(park, chain, FACTORY, "epcis.event", {"event": packing("p", MASK["qr"])})]
    )
    chain.commit_block([recall(park, chain, units=[MASK[spelling]])])
    assert chain.rules.recalls.recall_of(BOX_LINK) is not None
    shipping = event("ship box", "shipping", epcList=[BOX_LINK])
    with pytest.raises(LedgerError, match="traced from"):
        chain.commit_block([signed(park, chain, FACTORY, "epcis.event", {"event": shipping})])


@pytest.mark.parametrize("spelling", sorted(MASK))
def test_an_atomic_batch_with_one_recalled_unit_is_refused_whole(
    park: Consortium, chain: DevChain, spelling: str
) -> None:
    from api.epcis.admission import Admission, prepare_one
    from traceability.epcis.index import EventIndex

    assert chain.store is not None
    chain.commit_block([recall(park, chain, units=[MASK["short"]])])
    node = NodeCore(park.genesis, chain.store, chain.membership, rules=chain.rules)
    other = f"https://id.gs1.org/01/{GTIN}/21/SOUND0001"
    txs = [
        sale(park, chain, other),
        sale(park, chain, MASK[spelling]),
    ]
    admission = Admission(node, EventIndex(chain.store))
    prepared = [prepare_one(i, tx) for i, tx in enumerate(txs)]
    with pytest.raises(LedgerError, match="recalled"):
        admission.precheck(prepared, {})
    assert len(node.mempool) == 0


def test_a_store_keyed_as_spelled_is_rekeyed_and_recalls_trace_through_it(
    park: Consortium, chain: DevChain, tmp_path: Path
) -> None:
    """What an earlier version left: product rows as spelled and no index name."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    store = chain.store
    assert store is not None
    chain.commit_block(
        [signed(park, chain, FACTORY, "epcis.event", {"event": packing("p", MASK["qr"])})]
    )
    with store.engine.begin() as conn:
        conn.execute(text("delete from product_index"))
        conn.execute(text("delete from meta where key = :k"), {"k": INDEX_META})
        for block in (store.block(h) for h in range(1, store.height() + 1)):
            assert block is not None
            first = block.header.log_size - len(block.txs)
            for position, tx in enumerate(block.txs):
                for ident in AS_SPELLED.identifiers(tx.type, tx.payload):
                    conn.execute(
                        text("insert into product_index values (:i, :l)"),
                        {"i": ident, "l": first + position},
                    )
    store.close()
    old = Store(url)
    assert old.indexed_by() == AS_SPELLED.name and old.index is AS_SPELLED
    assert old.txs_for_product(MASK["short"]) == []  # as spelled, the QR form is elsewhere
    old.close()

    resumed = DevChain.resume(park.genesis, park.validator_keys, Store(url))  # a node starts
    assert resumed.store is not None and resumed.store.indexed_by() == PRODUCT_INDEX.name
    assert len(resumed.store.txs_for_product(MASK["urn"])) == 1
    resumed.commit_block([recall(park, resumed, units=[MASK["urn"]])])
    assert resumed.rules.recalls.recall_of(BOX) is not None
    assert verify_store(resumed.store, park.genesis, rules=trace_rules).ok
    reopened = Store(url)  # without the domain's index: reads go on, writes are refused
    assert reopened.index is None
    report = verify_store(reopened, park.genesis)
    assert report.ok and any("product index not checked" in n for n in report.notes)
    reopened.close()


def test_the_verifier_checks_the_canonical_rows(park: Consortium, chain: DevChain) -> None:
    store = chain.store
    assert store is not None
    chain.commit_block(
        [signed(park, chain, FACTORY, "epcis.event", {"event": packing("p", MASK["qr"])})]
    )
    with store.engine.begin() as conn:  # one row back to its spelling on the chain
        conn.execute(
            text("update product_index set identifier = :s where identifier = :c"),
            {"s": MASK["qr"], "c": canonical_key(MASK["qr"])},
        )
    report = verify_store(store, park.genesis, rules=trace_rules)
    assert not report.ok and report.problem is not None
    assert report.problem.height == 1 and "product index" in report.problem.what
