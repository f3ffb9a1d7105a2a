"""Receipts: built from a node's store, verified offline with nothing but genesis —
including signers who joined after genesis and blocks certified after a validator-set
change, which a receipt must link back to genesis or be refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ledger.block import Block, CommitCertificate, Vote
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from ledger.membership import ADD_ORG, SET_VALIDATORS
from ledger.store import Store
from ledger.tx import Transaction
from nodes.devchain import DevChain
from traceability.epcis.document import parse_json
from traceability.epcis.index import EventIndex
from traceability.receipts import ReceiptError, build_receipt, receipt_bytes, verify_receipt

MSB = "market-supervision-bureau"
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def event(step: str, epc: str = "urn:epc:id:sgtin:0690789.000003.1") -> dict:
    return {
        "event": {
            "@context": CONTEXT,
            "type": "ObjectEvent",
            "eventTime": "2026-11-20T08:00:00.000+08:00",
            "eventTimeZoneOffset": "+08:00",
            "epcList": [epc],
            "action": "OBSERVE",
            "bizStep": step,
        }
    }


class EveryKeySigns(DevChain):
    """Certifies with every validator key it holds, not just a quorum.

    After a validator-set change in block h, block h+1 is checked against the new set,
    so block h's certificate must hold a quorum of the new set too (see the report).
    """

    def certify(self, block: Block, round_: int = 0) -> CommitCertificate:
        votes = [
            Vote(self.state.chain_id, block.height, round_, "precommit", block.hash, v.id).signed(
                self.keys[v.id]
            )
            for v in self.state.validators.validators
            if v.id in self.keys
        ]
        return CommitCertificate.from_votes(votes)


@pytest.fixture
def chain(park: Consortium, tmp_path) -> Iterator[EveryKeySigns]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    yield EveryKeySigns(park.genesis, dict(park.validator_keys), store)
    store.close()


def receipt_of(chain: DevChain, tx: Transaction) -> dict:
    assert chain.store is not None
    index = EventIndex(chain.store)
    stored = chain.store.tx(tx.id)
    assert stored is not None
    receipt = build_receipt(
        chain.store, chain.genesis, tx.id, index.membership_changes(stored.height)
    )
    assert receipt is not None
    return receipt


def stamp(n: int) -> str:
    return f"2026-11-01T00:00:{n:02d}.000Z"


def joined_later(park: Consortium, chain: DevChain, joined: str, recorded: str) -> Transaction:
    """The tea cooperative joins the consortium at `joined` (a block of its own); its
    admin's commissioning event, signed at `recorded`, is committed in the next block."""
    key = PrivateKey.from_seed(b"t" * 32)
    cred = park.issue("ganzhou-tea-coop", "admin", key, roles=("producer",))
    org = {"id": "ganzhou-tea-coop", "name": "Ganzhou Tea Cooperative", "name_zh": "赣州茶叶合作社",
           "roles": ["producer"], "certificates": [cred.pem]}  # fmt: skip
    chain.commit_block([park.membership_tx(MSB, ADD_ORG, {"organization": org}, timestamp=joined)])
    tea = Transaction.create(
        key,
        chain_id=park.genesis.chain_id,
        type="epcis.event",
        payload=event("commissioning"),
        signer=cred.fingerprint,
        timestamp=recorded,
    )
    chain.commit_block([tea])
    return tea


def fifth_validator(park: Consortium) -> tuple[dict, PrivateKey]:
    """A `membership.set_validators` change adding the mask factory's second node to
    genesis's four, and that node's key."""
    node_key = PrivateKey.from_seed(b"n" * 32)
    cred = park.issue("ganzhou-mask-factory", "mask-factory-node-2", node_key, roles=("validator",))
    entries = [{**v.to_json(), "certificate": c.pem} for v, c in park.genesis.validators]
    entries.append(
        {
            "id": "mask-factory-node-2",
            "org": "ganzhou-mask-factory",
            "public_key": node_key.public_key.to_json(),
            "certificate": cred.pem,
        }
    )
    return {"previous": park.genesis.validator_set().hash(), "validators": entries}, node_key


def test_receipt_verifies_offline_and_names_what_it_proves(park: Consortium, chain) -> None:
    txs = [park.sign_tx("gannan-orchard-coop", "epcis.event", event("commissioning"), stamp(i))
           for i in range(5)]  # fmt: skip
    chain.commit_block(txs[:3])
    chain.commit_block(txs[3:])
    receipt = receipt_of(chain, txs[4])
    check = verify_receipt(json.loads(receipt_bytes(receipt)), park.genesis)
    assert (check.tx_id, check.height, check.log_index, check.log_size) == (txs[4].id, 2, 4, 5)
    assert check.signer == "admin@gannan-orchard-coop"
    assert check.signatures == 4 and check.quorum == 3 and check.links == 0
    assert build_receipt(chain.store, park.genesis, "ab" * 32, []) is None


def test_every_changed_byte_fails(park: Consortium, chain) -> None:
    tx = park.sign_tx("wenshan-growers", "epcis.event", event("commissioning"), stamp(1))
    other = park.sign_tx("wenshan-growers", "epcis.event", event("storing"), stamp(2))
    chain.commit_block([other, tx])
    raw = receipt_bytes(receipt_of(chain, tx))
    verify_receipt(parse_json(raw, unique_keys=True), park.genesis)
    survivors = []
    for i in range(len(raw)):
        tampered = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        try:
            verify_receipt(parse_json(tampered, unique_keys=True), park.genesis)
        except (ReceiptError, ValueError):
            continue
        survivors.append(i)
    assert survivors == []


def test_another_genesis_or_chain_is_refused(park: Consortium, chain) -> None:
    tx = park.sign_tx("gannan-orchard-coop", "epcis.event", event("commissioning"), stamp(1))
    chain.commit_block([tx])
    receipt = receipt_of(chain, tx)
    stranger = Consortium.sample(seed=b"another park", now=datetime(2026, 11, 1, tzinfo=UTC))
    with pytest.raises(ReceiptError, match="another genesis"):
        verify_receipt(receipt, stranger.genesis)
    with pytest.raises(ReceiptError, match="fields must be"):
        verify_receipt({**receipt, "extra": 1}, park.genesis)
    forged = json.loads(json.dumps(receipt))
    forged["commit"]["signatures"] = forged["commit"]["signatures"][:2]
    with pytest.raises(ReceiptError, match="a quorum is 3"):
        verify_receipt(forged, park.genesis)


def test_a_signer_who_joined_later_is_linked_to_genesis(park: Consortium, chain) -> None:
    tea = joined_later(park, chain, joined=stamp(1), recorded=stamp(2))
    receipt = receipt_of(chain, tea)
    assert len(receipt["links"]) == 1
    check = verify_receipt(receipt, park.genesis)
    assert check.signer == "admin@ganzhou-tea-coop" and check.links == 1
    with pytest.raises(ReceiptError, match="not in genesis and no link of this receipt"):
        verify_receipt({**receipt, "links": []}, park.genesis)


def test_a_validator_set_change_is_linked_or_refused(park: Consortium, chain) -> None:
    change, node_key = fifth_validator(park)
    before = park.sign_tx("gannan-orchard-coop", "epcis.event", event("commissioning"), stamp(1))
    chain.commit_block(
        [before, park.membership_tx(MSB, SET_VALIDATORS, change, timestamp=stamp(2))]
    )
    chain.keys["mask-factory-node-2"] = node_key
    after = park.sign_tx("gannan-orchard-coop", "epcis.event", event("storing"), stamp(3))
    chain.commit_block([after])

    # Block 1 was certified by genesis's set: no link needed.
    assert verify_receipt(receipt_of(chain, before), park.genesis).links == 0
    # Block 2 by the new set of five: the receipt carries the change that installed it.
    receipt = receipt_of(chain, after)
    check = verify_receipt(receipt, park.genesis)
    assert (check.links, check.signatures, check.quorum) == (1, 5, 4)
    with pytest.raises(ReceiptError, match="does not link to genesis"):
        verify_receipt({**receipt, "links": []}, park.genesis)
