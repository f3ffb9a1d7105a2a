"""Every business rule is a block rule: what the API once checked only at its own door is
now refused whichever way a transaction arrives — submission, gossip (`NodeCore.submit`,
which `_admit_gossiped` calls), a proposal judged by an honest validator (the same
`check_txs` with the domain rules that `Node._valid` runs), and `parktrace verify` over a
store that was written behind the nodes' backs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.consortium import Consortium
from ledger.errors import LedgerError
from ledger.store import Store
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.devchain import DevChain
from nodes.service import NodeCore
from nodes.solo import SoloNode
from tests.chains import commissioning, judge, write_behind_the_nodes_back
from traceability.validity import trace_rules

TX_TYPES = (
    "epcis.event",
    "codes.issue",
    "recall",
    "membership.add_org",
    "membership.revoke",
    "membership.set_validators",
    "membership.rotate_key",
    "membership.set_prefixes",
    "plot.register",
    "rules.set",
)
SIGNER_OF = {
    "epcis.event": "gannan-orchard-coop",
    "codes.issue": "gannan-orchard-coop",
    "recall": "market-supervision-bureau",
}


def event(label: str, **fields: Any) -> dict[str, Any]:
    return commissioning(label, "https://id.gs1.org/01/06901234000122/21/ABC123", **fields)


def sign(park: Consortium, chain: DevChain, tx_type: str, payload: Any) -> Transaction:
    org = SIGNER_OF.get(tx_type, "market-supervision-bureau")
    return park.sign_tx(org, tx_type, payload, chain.next_time())


def invalid_payloads() -> list[tuple[str, Any]]:
    without_time = event("no time")
    del without_time["eventTime"]
    return [
        ("codes.issue", {"event": {"epcList": 5}}),  # the payload that halted the cluster
        ("codes.issue", {"anything": "goes"}),
        ("epcis.event", {"event": without_time}),
        ("epcis.event", {"event": event("foo", type="FooEvent")}),
        ("epcis.event", {"event": {"epcList": 5}}),
        ("recall", {"lot": 5}),
    ]


@pytest.mark.parametrize(("tx_type", "payload"), invalid_payloads())
def test_an_invalid_payload_is_refused_at_admission_and_in_a_proposal(
    park: Consortium, chain: DevChain, tx_type: str, payload: Any
) -> None:
    assert chain.store is not None
    tx = sign(park, chain, tx_type, payload)
    node = NodeCore(park.genesis, chain.store, chain.membership)
    with pytest.raises(LedgerError):  # submission and gossip both go through here
        node.submit(tx)
    assert tx.id not in node.mempool
    # A proposer that skipped the rules: the honest validator's predicate refuses it.
    with pytest.raises(LedgerError):
        judge(chain, [tx])
    # ... and the chain goes on committing valid work.
    good = sign(park, chain, "epcis.event", {"event": event(f"good {tx_type} {payload}")})
    block = chain.commit_block([good])
    assert block.height == 1 and chain.store.height() == 1


def test_verify_rejects_a_stored_invalid_event(park: Consortium, chain: DevChain) -> None:
    assert chain.store is not None
    chain.commit_block([sign(park, chain, "epcis.event", {"event": event("first")})])
    bad = event("bad", type="FooEvent")
    chain.membership.check_tx(
        sign(park, chain, "epcis.event", {"event": bad}), 2, chain.next_time()
    )  # the chain's own rules (signature, membership, policy) have nothing against it
    write_behind_the_nodes_back(chain, [sign(park, chain, "epcis.event", {"event": bad})])
    report = verify_store(chain.store, park.genesis, rules=trace_rules)
    assert not report.ok and report.problem is not None
    assert report.problem.height == 2 and "FooEvent" in report.problem.what
    with pytest.raises(LedgerError, match="height 2"):
        DevChain.resume(park.genesis, park.validator_keys, chain.store)


def test_an_atomic_batch_with_one_recalled_unit_is_refused_whole(
    park: Consortium, chain: DevChain
) -> None:
    from api.epcis.admission import Admission, prepare_one
    from traceability.epcis.index import EventIndex

    assert chain.store is not None
    unit = "https://id.gs1.org/01/06907890000346/21/7GDYEY1GW29XR9EG"
    recall = {"lot": unit, "reason": "filtration below GB 2626-2019"}
    chain.commit_block([sign(park, chain, "recall", recall)])
    node = NodeCore(park.genesis, chain.store, chain.membership, rules=chain.rules)
    selling = event("sale", bizStep="retail_selling", epcList=[unit])
    txs = [
        park.sign_tx("gannan-orchard-coop", "epcis.event", {"event": event("ok")}),
        park.sign_tx("retail-pharmacy-chain", "epcis.event", {"event": selling}),
    ]
    admission = Admission(node, EventIndex(chain.store))
    prepared = [prepare_one(i, tx) for i, tx in enumerate(txs)]
    with pytest.raises(LedgerError, match="recalled"):
        admission.precheck(prepared, {})
    assert len(node.mempool) == 0


# -- the whole single-node path under arbitrary payloads ------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["event", "epcList", "type", "lot", "reason", "units", "change", "approvals", "gtin", "batch"]
)
SHAPED = st.dictionaries(KEYS, JSON, max_size=4) | st.fixed_dictionaries(
    {
        "event": st.dictionaries(
            st.sampled_from(
                ["epcList", "type", "bizStep", "parentID", "childEPCs", "quantityList", "@context"]
            ),
            JSON,
        )
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tx_type=st.sampled_from(TX_TYPES), payload=SHAPED | JSON)
def test_arbitrary_payloads_meet_only_typed_refusals(
    park: Consortium, tmp_path_factory: pytest.TempPathFactory, tx_type: str, payload: Any
) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'node.db'}")
    try:
        node = SoloNode(park.genesis, park.validator_keys, store)
        try:
            tx = sign(park, node.chain, tx_type, payload)
            node.submit(tx)
        except LedgerError:
            return  # a typed refusal: the only acceptable way to say no
        node.produce()  # propose, decide, store
        assert asyncio.run(node.wait(tx.id, 0)).state in ("committed", "rejected")
        assert verify_store(store, park.genesis, rules=trace_rules).ok
    finally:
        store.close()
