"""The API's event index reads the same on SQLite and PostgreSQL: it follows the store
block by block, writing rows with the driver's own executemany (one statement per table
and block), so both databases' parameter styles are exercised here."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain
from traceability.epcis.index import EventIndex, canonical_identifier, events, identifiers


def _rows(index: EventIndex) -> tuple[list, list]:
    kept = [c for c in events.c if c.name != "event"]
    return (
        [tuple(r) for r in index.run(select(*kept).order_by(events.c.log_index))],
        [tuple(r) for r in index.run(select(identifiers).order_by(*identifiers.c))],
    )


def test_the_index_is_the_same_on_both_databases(
    park: Consortium, tmp_path: Path, db_url: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'chain.db'}")
    chain = DevChain(park.genesis, dict(park.validator_keys), store)
    txs = [sample_event_tx(park, i) for i in range(12)]
    chain.commit_block(txs[:5])
    chain.commit_block(txs[5:])
    memory, other = EventIndex(store), EventIndex(store, db_url)
    try:
        assert other.sync() == memory.sync() == 2
        assert _rows(other) == _rows(memory)
        event_rows, ident_rows = _rows(memory)
        assert [r[0] for r in event_rows] == list(range(12))  # every event, by log index
        first = txs[0].payload["event"]["quantityList"][0]["epcClass"]
        assert (canonical_identifier(first), "class", 0) in ident_rows  # in GS1's canonical form
        assert canonical_identifier(first).startswith("https://id.gs1.org/01/")
        wanted = [t.payload["event"]["eventID"] for t in txs[:3]]
        assert other.known_event_ids([*wanted, "urn:uuid:nobody"]) == {
            e: t.id for e, t in zip(wanted, txs, strict=False)
        }
        assert other.count() == 12
    finally:
        memory.close()
        other.close()
        store.close()


def test_blocks_held_in_memory_index_as_the_store_reads_back(
    park: Consortium, tmp_path: Path
) -> None:
    """A node hands the index the blocks it just committed; those rows must be exactly the
    ones read back from the store (log indexes, ids, signers, times, identifiers)."""
    from api.histories import build_histories
    from traceability.codes.sealing import ResolverKey

    store = Store(f"sqlite:///{tmp_path / 'chain.db'}")
    chain = DevChain(park.genesis, dict(park.validator_keys), store)
    held = {}
    for start in (0, 4, 9):
        block = chain.commit_block([sample_event_tx(park, start + i) for i in range(3)])
        held[block.height] = block
    key = ResolverKey.from_seed(b"index test").public
    build_histories(park, chain, [key], "id.parktrace.example", masks=3)  # varied events
    held.update({h: store.block(h) for h in range(4, store.height() + 1)})
    from_store, from_memory = EventIndex(store), EventIndex(store, recent=held.get)
    try:
        assert from_memory.sync() == from_store.sync() == store.height()
        assert _rows(from_memory) == _rows(from_store)
        assert from_memory.count() == from_store.count() > 9
    finally:
        from_store.close()
        from_memory.close()
        store.close()


def test_memo_holds_until_the_index_follows_a_new_block(park: Consortium, tmp_path: Path) -> None:
    from traceability.epcis.history import product_history

    store = Store(f"sqlite:///{tmp_path / 'chain.db'}")
    chain = DevChain(park.genesis, dict(park.validator_keys), store)
    chain.commit_block([sample_event_tx(park, 0)])
    index = EventIndex(store)
    lot = sample_event_tx(park, 0).payload["event"]["quantityList"][0]["epcClass"]
    first = product_history(index, lot)
    assert first is not None and product_history(index, lot) is first  # computed once
    chain.commit_block([sample_event_tx(park, 3)])  # the same lot: a second event
    again = product_history(index, lot)
    assert again is not first and len(again["events"]) == len(first["events"]) + 1
    index.close()
    store.close()
