"""Events, proposals and stored blocks for the block-rule tests on a `DevChain`: one
honest validator's judgement of a proposal, and a block a quorum certified without
judging it, so that every path a transaction can take is tried with the same rules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledger.chain import build_block, check_next
from ledger.errors import LedgerError
from ledger.tx import Transaction
from ledger.validate import check_txs
from ledger.verify import VerifyReport, verify_store
from nodes.devchain import DevChain
from nodes.service import NodeCore
from traceability.validity import trace_rules

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def object_event(label: str, **fields: Any) -> dict[str, Any]:
    """An EPCIS ObjectEvent whose eventID follows from `label`; `fields` add or replace."""
    return {
        "@context": CONTEXT,
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, label)}",
        "eventTime": "2026-11-20T09:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        **fields,
    }


def commissioning(label: str, epc: str, **fields: Any) -> dict[str, Any]:
    """The commissioning (ADD) of `epc`, as `object_event`; `fields` add or replace."""
    return object_event(
        label, **{"action": "ADD", "bizStep": "commissioning", "epcList": [epc], **fields}
    )


def judge(chain: DevChain, txs: list[Transaction]) -> None:
    """What an honest validator runs on a proposal of `txs` for the next height."""
    assert chain.store is not None
    height, time = chain.state.height + 1, chain.next_time()
    check_txs(
        txs,
        chain.membership,
        height=height,
        time=time,
        known=chain.store.known_tx_ids,
        rules=chain.rules.begin(height, time),
    )


def write_behind_the_nodes_back(chain: DevChain, txs: list[Transaction]) -> None:
    """A block certified by a quorum but never judged: what a Byzantine majority, or an
    edit of the database, could leave in a store."""
    assert chain.store is not None
    block = build_block(
        chain.state,
        txs=txs,
        time=chain.next_time(),
        proposer=chain.state.validators.proposer(chain.state.height + 1, 0).id,
        last_commit=chain.last_commit,
    )
    chain.store.save_block(block, chain.certify(block), check_next(chain.state, block))


def refused_everywhere(
    chain: DevChain, tx: Transaction, error: type[LedgerError], match: str | None = None
) -> VerifyReport:
    """Refused at admission and gossip (and kept out of the mempool), and in a proposal;
    then written behind the nodes' backs, refused by the verifier at that height. The
    verifier's report is returned for what the caller checks of its words."""
    assert chain.store is not None
    node = NodeCore(chain.genesis, chain.store, chain.membership, rules=chain.rules)
    with pytest.raises(error, match=match):
        node.submit(tx)
    assert tx.id not in node.mempool
    height = chain.state.height + 1
    with pytest.raises(error, match=match):
        judge(chain, [tx])
    write_behind_the_nodes_back(chain, [tx])
    report = verify_store(chain.store, chain.genesis, rules=trace_rules)
    assert not report.ok and report.problem is not None
    assert report.problem.height == height
    return report
