"""The store on SQLite and PostgreSQL: round trips, atomic blocks, proofs, chain binding."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect, text

from devtools.samples import lot_uri, sample_event_tx
from ledger import merkle
from ledger.consortium import Consortium
from ledger.store import Store, StoreError
from nodes.devchain import DevChain
from tests.conftest import FIXED_NOW


def build(park: Consortium, url: str, blocks: int, per_block: int = 3) -> tuple[Store, DevChain]:
    store = Store(url)
    chain = DevChain(park.genesis, park.validator_keys, store)
    n = 0
    for _ in range(blocks):
        chain.commit_block([sample_event_tx(park, n + i) for i in range(per_block)])
        n += per_block
    return store, chain


def test_roundtrip(park: Consortium, db_url: str) -> None:
    store, _ = build(park, db_url, blocks=6)
    assert store.height() == 6
    for height in range(1, 7):
        block = store.block(height)
        assert block is not None
        assert block.hash == store.header(height).hash
        commit = store.commit(height)
        commit.verify(
            park.genesis.validator_set(),
            chain_id=park.genesis.chain_id,
            height=height,
            block_hash=block.hash,
        )
    # The stored certificate of block h is the one block h+1 carries.
    assert store.block(4).last_commit == store.commit(3)
    tx = sample_event_tx(park, 4)
    stored = store.tx(tx.id)
    assert stored is not None and stored.tx == tx and stored.height == 2
    assert store.tx("00" * 32) is None and store.tx("not-hex") is None
    assert store.known_tx_ids([tx.id, "ab" * 32]) == {tx.id}
    ident = tx.payload["event"]["quantityList"][0]["epcClass"]
    # The orange lot's history: commissioned (0), packed (3), shipped (4), in log order.
    history = [sample_event_tx(park, i).id for i in (0, 3, 4)]
    assert [s.tx.id for s in store.txs_for_product(ident)] == history
    assert store.txs_for_product(lot_uri("0000000000000", "nothing")) == []
    store.close()


def test_frontier_and_proofs_from_store(park: Consortium, db_url: str) -> None:
    store, chain = build(park, db_url, blocks=7, per_block=5)
    leaves = [tx.leaf_hash() for h in range(1, 8) for tx in store.block(h).txs]
    assert store.frontier() == chain.state.log
    assert store.log_size() == len(leaves) == 35
    proofs = store.proofs()
    assert proofs.root(35).hex() == store.header(7).log_root
    for index in (0, 17, 34):
        proof = proofs.inclusion_proof(index, 35)
        assert proof == merkle.inclusion_proof(leaves, index)
        merkle.verify_inclusion(leaves[index], index, 35, proof, proofs.root(35))
    old = store.header(3)
    proof = proofs.consistency_proof(old.log_size, 35)
    merkle.verify_consistency(old.log_size, 35, bytes.fromhex(old.log_root), proofs.root(35), proof)
    store.close()


def test_a_failed_block_leaves_nothing(park: Consortium, db_url: str) -> None:
    store, chain = build(park, db_url, blocks=2)
    block = chain.commit_block([sample_event_tx(park, 100)])
    # Saving the same block again collides on every key: nothing of it may be half-written.
    with pytest.raises(StoreError, match="cannot store block 3"):
        store.save_block(block, chain.certify(block), [])
    with store.engine.connect() as conn:
        assert conn.execute(text("select count(*) from blocks")).scalar() == 3
        assert conn.execute(text("select count(*) from transactions")).scalar() == 7
    store.close()


def test_store_refuses_another_chain(park: Consortium, db_url: str) -> None:
    store, _ = build(park, db_url, blocks=1)
    other = Consortium.sample(seed=b"another park", now=FIXED_NOW)
    with pytest.raises(StoreError, match="holds chain with genesis"):
        store.bind_chain(other.genesis.chain_id, other.genesis.hash, other.genesis.to_json())
    store.close()


def test_unmigrated_database_is_refused(db_url: str) -> None:
    with pytest.raises(StoreError, match="schema is at nothing"):
        Store(db_url, migrate=False)
    Store(db_url).close()
    Store(db_url).close()  # migrating twice is harmless
    Store(db_url, migrate=False).close()


#: A process that dies (no rollback, no cleanup) as its store's migration creates `claims`.
_DIES_MIGRATING = """
import os, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from ledger.store import Store

def die(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("CREATE TABLE CLAIMS"):
        os._exit(9)

event.listen(Engine, "before_cursor_execute", die)
Store(sys.argv[1])
"""


def test_a_crash_in_the_middle_of_the_first_migration_leaves_nothing_behind(
    db_url: str,
) -> None:
    """A new node killed while creating its schema starts again, instead of failing on
    "table meta already exists" for good."""
    died = subprocess.run([sys.executable, "-c", _DIES_MIGRATING, db_url], timeout=60)
    assert died.returncode == 9
    store = Store(db_url)
    with store.engine.connect() as connection:
        assert "claims" in inspect(connection).get_table_names()
    assert store.height() == 0
    store.close()


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        Store("postgresql://nobody@127.0.0.1:1/none")


def test_a_store_written_at_an_older_schema_upgrades_with_nothing_lost(
    park: Consortium, db_url: str
) -> None:
    from alembic import command

    from ledger.verify import verify_store

    store, _ = build(park, db_url, blocks=2)
    config = store._alembic_config()
    with store.engine.begin() as connection:  # back to the first schema, data kept
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    with pytest.raises(StoreError, match="schema is at 0001"):
        Store(db_url, migrate=False)
    upgraded = Store(db_url)  # what a node does when it starts
    assert upgraded.height() == 2 and upgraded.log_size() == 6
    with upgraded.engine.connect() as connection:  # the unread index is gone
        indexes = {i["name"] for i in inspect(connection).get_indexes("transactions")}
    assert "ix_transactions_signer_type" not in indexes
    assert verify_store(upgraded, park.genesis).ok
    upgraded.close()
    store.close()


def test_claims_are_indexed_and_read_below_a_height(park: Consortium, db_url: str) -> None:
    from ledger.claims import EVENT, claim

    store, _ = build(park, db_url, blocks=2, per_block=2)
    first, later = (store.block(h).txs[0] for h in (1, 2))  # type: ignore[union-attr]
    keys = [claim(EVENT, tx.payload["event"]["eventID"]) for tx in (first, later)]
    assert store.claimed(keys) == {
        keys[0]: [(first.id, first.signer)],
        keys[1]: [(later.id, later.signer)],
    }
    assert store.claimed(keys, below_height=2) == {keys[0]: [(first.id, first.signer)]}
    assert store.claimed([claim(EVENT, "urn:uuid:never-recorded")]) == {}
    store.close()


def test_blocks_stored_while_streaming_are_not_skipped(park: Consortium, db_url: str) -> None:
    """A running node's store grows while it is read: a batch that ended at the head
    then must be followed from the block after it, not from the end of its range."""
    store, chain = build(park, db_url, blocks=3, per_block=1)
    seen = []
    for raw in store.raw_blocks(batch=2):
        seen.append(raw.height)
        if raw.height == 3:
            chain.commit_block([sample_event_tx(park, 100)])
            chain.commit_block([sample_event_tx(park, 101)])
    assert seen == [1, 2, 3, 4, 5]
    store.close()
