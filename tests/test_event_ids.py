"""eventIDs are unique chain-wide, as a block rule: the same event admitted by two nodes
at once commits once, a block holding it twice is refused, and the verifier refuses a
store where it was written twice. An EPCIS error declaration repeats the eventID of the
event it declares erroneous: accepted once, from the organisation that recorded it or the
regulator, and only for an event on the chain; every other one is refused at admission,
in a proposal and by the verifier alike. The `claims` index behind the rule is filled in
for stores written before it existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger.consortium import Consortium
from ledger.store import Store
from ledger.validate import select_txs
from ledger.verify import verify_store
from nodes.devchain import DevChain
from nodes.service import NodeCore
from tests.chains import commissioning, judge, refused_everywhere, write_behind_the_nodes_back
from traceability.epcis.problems import EpcisValidationError
from traceability.errors import DuplicateClaimError, ErrorDeclarationError, UnknownEventError
from traceability.validity import trace_rules

ORCHARD, PACKING = "gannan-orchard-coop", "ganzhou-packing-house"
REGULATOR = "market-supervision-bureau"


def event(label: str, serial: int = 1, **fields: Any) -> dict[str, Any]:
    return commissioning(label, f"https://id.gs1.org/01/06901234000122/21/S{serial}", **fields)


def declaring(original: dict[str, Any], *corrective: str) -> dict[str, Any]:
    """The error declaration of `original` (EPCIS 2.0 §7.4.1.4): the same event, its
    eventID included, with errorDeclaration naming the `corrective` events."""
    error = {"declarationTime": "2026-11-21T09:00:00Z", "reason": "incorrect_data"}
    return {
        **original,
        "errorDeclaration": error
        | ({"correctiveEventIDs": list(corrective)} if corrective else {}),
    }


def record(park: Consortium, chain: DevChain, body: dict[str, Any], org: str = ORCHARD):
    return park.sign_tx(org, "epcis.event", {"event": body}, chain.next_time())


def test_the_same_event_admitted_by_two_nodes_commits_once(
    park: Consortium, chain: DevChain
) -> None:
    assert chain.store is not None
    first = record(park, chain, event("harvest"))
    second = record(park, chain, event("harvest"), org=PACKING)  # another signer, same eventID
    assert first.id != second.id
    # Two nodes of the chain admit one each: neither knows the other's pending one.
    nodes = [NodeCore(park.genesis, chain.store, chain.membership, rules=chain.rules) for _ in "ab"]
    nodes[0].submit(first)
    nodes[1].submit(second)
    # Gossip brings both to the proposer, which keeps the first and says why not the second.
    height = chain.state.height + 1
    chosen, rejected, _ = select_txs(
        [first, second],
        chain.membership,
        height=height,
        time=chain.next_time(),
        known=chain.store.known_tx_ids,
        rules=chain.rules.begin(height),
    )
    assert chosen == [first] and [r.tx for r in rejected] == [second]
    assert isinstance(rejected[0].reason, DuplicateClaimError)
    # A Byzantine proposer that keeps both is refused by every honest validator.
    with pytest.raises(DuplicateClaimError, match="is already recorded"):
        judge(chain, [first, second])
    chain.commit_block(chosen)
    # Once committed, any node refuses it at the door, naming the transaction.
    late = NodeCore(park.genesis, chain.store, chain.membership, rules=chain.rules)
    with pytest.raises(DuplicateClaimError, match=f"already recorded \\(transaction {first.id}\\)"):
        late.submit(second)
    write_behind_the_nodes_back(chain, [second])
    report = verify_store(chain.store, park.genesis, rules=trace_rules)
    assert not report.ok and report.problem is not None and report.problem.height == 2
    assert "is already recorded" in report.problem.what


def test_an_error_declaration_of_a_recorded_event_is_accepted_once(
    park: Consortium, chain: DevChain
) -> None:
    original = event("packing count")
    chain.commit_block([record(park, chain, original)])
    # Only the organisation that recorded the event may declare it erroneous.
    with pytest.raises(ErrorDeclarationError, match="recorded by 'gannan-orchard-coop'"):
        judge(chain, [record(park, chain, declaring(original), org=PACKING)])
    declaration = record(park, chain, declaring(original))
    with pytest.raises(DuplicateClaimError, match="already declared erroneous"):
        judge(chain, [declaration, record(park, chain, declaring(original))])
    chain.commit_block([declaration])
    with pytest.raises(
        DuplicateClaimError, match=f"declared erroneous \\(transaction {declaration.id}"
    ):
        judge(chain, [record(park, chain, declaring(original))])
    # The event itself stays recorded once: a corrected event takes a new eventID.
    with pytest.raises(DuplicateClaimError):
        judge(chain, [record(park, chain, original)])
    chain.commit_block([record(park, chain, event("packing count, corrected"))])
    assert chain.store is not None
    assert verify_store(chain.store, park.genesis, rules=trace_rules).ok


def test_the_regulator_may_declare_any_event_erroneous(park: Consortium, chain: DevChain) -> None:
    """Even one whose business step it may not record itself: a declaration records no
    step (the write policy checks its type only)."""
    original = event("commissioned in error", serial=4)
    corrected = event("commissioned, corrected", serial=5)
    chain.commit_block([record(park, chain, original), record(park, chain, corrected)])
    by_regulator = record(park, chain, declaring(original, corrected["eventID"]), org=REGULATOR)
    block = chain.commit_block([by_regulator])
    assert [tx.id for tx in block.txs] == [by_regulator.id]
    assert chain.store is not None
    assert verify_store(chain.store, park.genesis, rules=trace_rules).ok


def test_another_organisations_event_is_not_its_to_declare(
    park: Consortium, chain: DevChain
) -> None:
    original = event("the orchard's own", serial=6)
    chain.commit_block([record(park, chain, original)])
    report = refused_everywhere(
        chain,
        record(park, chain, declaring(original), org=PACKING),
        ErrorDeclarationError,
        match="recorded by 'gannan-orchard-coop'; only that organisation or the regulator",
    )
    assert "not 'ganzhou-packing-house'" in report.problem.what


def test_an_event_the_chain_does_not_hold_cannot_be_declared(
    park: Consortium, chain: DevChain
) -> None:
    """Else anyone could take the one declaration of an eventID before its event is
    recorded, and its recorder could never correct it."""
    unknown = event("never recorded", serial=7)
    refused_everywhere(
        chain,
        record(park, chain, declaring(unknown)),
        UnknownEventError,
        match=f"event {unknown['eventID']} is not recorded on this chain",
    )


def test_a_declaration_names_its_event_and_another_as_corrective(
    park: Consortium, chain: DevChain
) -> None:
    original = event("to correct", serial=8)
    chain.commit_block([record(park, chain, original)])
    anonymous = {k: v for k, v in declaring(original).items() if k != "eventID"}
    with pytest.raises(ErrorDeclarationError, match="names the erroneous event by its eventID"):
        judge(chain, [record(park, chain, anonymous)])
    with pytest.raises(EpcisValidationError, match="correctiveEventIDs\\[0\\]: names the event"):
        judge(chain, [record(park, chain, declaring(original, original["eventID"]))])


def test_an_event_and_its_declaration_in_one_block(park: Consortium, chain: DevChain) -> None:
    original = event("in one block", serial=2)
    block = chain.commit_block(
        [record(park, chain, original), record(park, chain, declaring(original))]
    )
    assert len(block.txs) == 2


def test_stores_from_before_the_claims_index_are_filled_in(
    park: Consortium, chain: DevChain, tmp_path: Path
) -> None:
    assert chain.store is not None
    harvest = record(park, chain, event("before the index"))
    chain.commit_block([harvest, record(park, chain, event("another", serial=3))])
    chain.store.close()
    with sqlite3.connect(tmp_path / "node.db") as db:  # the schema as revision 0002 left it
        db.execute("DROP TABLE claims")
        db.execute("DROP TABLE seen_signatures")
        db.execute("DROP TABLE tallies")
        db.execute("DROP TABLE local_records")
        db.execute("UPDATE alembic_version SET version_num = '0002'")
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        assert verify_store(store, park.genesis, rules=trace_rules).ok
        resumed = DevChain.resume(park.genesis, park.validator_keys, store)
        with pytest.raises(DuplicateClaimError, match=harvest.id):
            resumed.commit_block([record(park, resumed, event("before the index"), org=PACKING)])
    finally:
        store.close()
