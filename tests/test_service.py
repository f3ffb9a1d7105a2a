"""Admission, status and waiting, on the single-process node; restart resumes the chain."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.errors import DuplicateError, IdentityError, LedgerError, NotPermittedError
from ledger.store import Store
from nodes.solo import SoloNode


def make_node(park: Consortium, url: str) -> SoloNode:
    return SoloNode(park.genesis, park.validator_keys, Store(url), block_interval=0.01)


def test_submit_commit_status(park: Consortium, tmp_path) -> None:
    node = make_node(park, f"sqlite:///{tmp_path / 'n.db'}")
    txs = [sample_event_tx(park, i) for i in range(5)]
    for tx in txs:
        assert node.submit(tx).state == "pending"
    with pytest.raises(DuplicateError, match="already pending"):
        node.submit(txs[0])
    block = node.produce()
    assert block is not None and block.height == 1 and len(block.txs) == 5
    assert node.status(txs[2].id).state == "committed"
    assert node.status(txs[2].id).height == 1
    assert node.status("ab" * 32).state == "unknown"
    with pytest.raises(DuplicateError, match="already committed"):
        node.submit(txs[0])
    assert node.produce() is None  # nothing pending: no empty block


def test_admission_rejects_what_can_never_commit(park: Consortium, tmp_path) -> None:
    node = make_node(park, f"sqlite:///{tmp_path / 'n.db'}")
    inspection = park.sign_tx(
        "gannan-orchard-coop",
        "epcis.event",
        {"event": {"type": "ObjectEvent", "bizStep": "inspecting"}},
    )
    with pytest.raises(
        NotPermittedError, match="may not record EPCIS events with bizStep 'inspecting'"
    ):
        node.submit(inspection)
    stranger = Consortium.sample(seed=b"another park")
    with pytest.raises(LedgerError, match="unknown signer"):
        node.submit(sample_event_tx(stranger, 1))
    assert len(node.mempool) == 0


def test_revoked_meanwhile_is_reported_rejected(park: Consortium, tmp_path) -> None:
    node = make_node(park, f"sqlite:///{tmp_path / 'n.db'}")
    _, fingerprint = park.user_key("wenshan-growers")
    pending = sample_event_tx(park, 1)  # signed by wenshan-growers
    assert pending.signer == fingerprint
    node.submit(pending)
    revoke = park.membership_tx(
        "market-supervision-bureau",
        "membership.revoke",
        {"certificate": fingerprint, "reason": "keyCompromise"},
    )
    # The revocation commits first (in its own block); the pending event then fails.
    node.mempool.remove([pending.id])
    node.submit(revoke)
    node.produce()
    node.mempool.add(pending)
    node.produce()
    status = node.status(pending.id)
    assert status.state == "rejected"
    assert "revoked" in status.reason and status.error == IdentityError.code


def test_wait_returns_on_commit_or_timeout(park: Consortium, tmp_path) -> None:
    async def scenario() -> tuple[str, str]:
        node = make_node(park, f"sqlite:///{tmp_path / 'n.db'}")
        runner = asyncio.create_task(node.run())
        tx = sample_event_tx(park, 3)
        node.submit(tx)
        committed = await node.wait(tx.id, timeout=5)
        runner.cancel()
        other = sample_event_tx(park, 4)
        node.submit(other)  # nobody produces blocks now
        timed_out = await node.wait(other.id, timeout=0.05)
        return committed.state, timed_out.state

    assert asyncio.run(scenario()) == ("committed", "pending")


def test_restart_resumes_and_tampered_store_refuses_to_start(park: Consortium, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    node = make_node(park, url)
    for i in range(3):
        node.submit(sample_event_tx(park, i))
        node.produce()
    node.store.close()
    again = make_node(park, url)
    assert again.chain.state.height == 3
    again.submit(sample_event_tx(park, 10))
    assert again.produce().height == 4
    with again.store.engine.begin() as conn:
        conn.execute(text("update blocks set evidence = '[ ]' where height = 2"))
    again.store.close()
    with pytest.raises(LedgerError, match="fails verification at height 2"):
        make_node(park, url)


def test_a_batch_is_admitted_with_one_claims_lookup_and_duplicates_still_refused(
    park: Consortium, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node(park, f"sqlite:///{tmp_path / 'n.db'}")
    first = [sample_event_tx(park, i) for i in range(3)]
    for tx in first:
        node.submit(tx)
    node.produce()
    lookups: list[int] = []
    claimed = node.store.claimed
    monkeypatch.setattr(
        node.store, "claimed", lambda keys, below=None: lookups.append(1) or claimed(keys, below)
    )
    batch = [sample_event_tx(park, i) for i in range(3, 23)]
    # The same events signed again at another instant: new transactions, recorded eventIDs.
    again = sample_event_tx(park, 1, timestamp="2026-11-20T09:00:00.000Z")
    node.prefetch([*batch, again])
    for tx in batch:
        node.submit(tx)
    with pytest.raises(DuplicateError, match="already recorded"):
        node.submit(again)
    assert len(lookups) == 1
