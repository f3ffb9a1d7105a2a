"""The peer wire form of blocks and the node's durable sign state.

A block travels with each transaction as its canonical text, so that a receiver holding a
transaction already (its mempool) reuses it instead of parsing it again, and parses any
other strictly from those bytes. The sign state names its blocks by hash and stores each
block once, beside it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.block import Block
from ledger.chain import ChainState, build_block
from ledger.crypto import PrivateKey
from ledger.errors import EncodingError, LedgerError, SchemaError
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet
from nodes.consensus.messages import Proposal, decode, encode
from nodes.consensus.signstate import SignState
from nodes.consensus.step import Step
from nodes.mempool import Mempool
from nodes.signstore import SignStore

KEY = PrivateKey.from_seed(bytes([7]) * 32)
CHAIN = "test-chain"
VALIDATORS = ValidatorSet((Validator("v0", KEY.public_key),))
GENESIS = ChainState(CHAIN, "ab" * 32, "2026-01-01T00:00:00.000Z", VALIDATORS)


def tx(n: int, note: str = "赣南脐橙") -> Transaction:
    return Transaction.create(
        KEY,
        chain_id=CHAIN,
        type="epcis.event",
        payload={"event": {"type": "ObjectEvent", "n": n, "note": note}},
        signer="0f" * 32,
        timestamp="2026-11-22T04:00:00.000Z",
        nonce=n.to_bytes(16, "big"),
    )


def block(txs: list[Transaction], second: int = 1) -> Block:
    return build_block(
        GENESIS,
        txs=txs,
        time=f"2026-01-01T00:00:{second:02d}.000Z",
        proposer="v0",
        last_commit=None,
    )


def test_block_carries_canonical_texts_and_round_trips() -> None:
    b = block([tx(1), tx(2)])
    wire = json.loads(json.dumps(b.to_json()))  # through real JSON, as a frame carries it
    assert wire["txs"] == [t.canonical().decode() for t in b.txs]
    again = type(b).from_json(wire)
    assert again == b and again.hash == b.hash
    again.check_body()


def test_held_transactions_are_reused_and_others_parsed() -> None:
    held, other = tx(1), tx(2)
    pool = Mempool()
    pool.add(held)
    b = block([held, other])
    again = type(b).from_json(b.to_json(), pool.by_canonical)
    assert again.txs[0] is held  # the mempool's object itself, not a parse of it
    assert again.txs[1] == other and again.txs[1] is not other
    pool.remove([held.id])
    assert pool.by_canonical(held.canonical()) is None


def test_a_text_that_is_not_canonical_is_refused() -> None:
    b = block([tx(1)])
    wire = b.to_json()
    spaced = json.dumps(json.loads(wire["txs"][0]), ensure_ascii=True)  # same value, other bytes
    with pytest.raises(EncodingError):
        type(b).from_json({**wire, "txs": [spaced]})
    with pytest.raises(SchemaError):
        type(b).from_json({**wire, "txs": [7]})


def test_proposals_decode_with_the_receivers_transactions() -> None:
    held = tx(3)
    b = block([held])
    message = Proposal(CHAIN, 1, 0, -1, b, "v0").signed(KEY)
    pool = Mempool()
    pool.add(held)
    decoded = decode(json.loads(json.dumps(encode(message))), pool.by_canonical)
    assert decoded == message and decoded.block.txs[0] is held


# -- the sign state on disk ---------------------------------------------------------------------
def state(b: Block, round_: int = 0, **changes: object) -> SignState:
    proposal = Proposal(CHAIN, 1, round_, -1, b, "v0").signed(KEY)
    base = SignState(1, round_, Step.PREVOTE, round_, b, round_, b, (), (proposal,))
    return replace(base, **changes)


def test_sign_state_stores_each_block_once_and_forgets_old_ones(tmp_path: Path) -> None:
    store = SignStore(tmp_path / "signstate.json")
    first, second = block([tx(1), tx(2)], 1), block([tx(3)], 2)
    store.save(state(first))
    files = sorted(p.name for p in store.blocks_dir.iterdir())
    assert files == [f"{first.hash}.json"]
    saved = json.loads((tmp_path / "signstate.json").read_text())
    assert saved["locked_value"] == saved["valid_value"] == first.hash  # named, not copied
    assert store.path.stat().st_size < 2000
    assert SignStore(store.path).load() == state(first)

    store.save(state(second, round_=1))
    assert sorted(p.name for p in store.blocks_dir.iterdir()) == [f"{second.hash}.json"]
    assert SignStore(store.path).load() == state(second, round_=1)


def test_a_block_written_before_a_crash_is_harmless(tmp_path: Path) -> None:
    store = SignStore(tmp_path / "signstate.json")
    kept, orphan = block([tx(1)], 1), block([tx(2)], 2)
    store.save(state(kept))
    # A crash after the next block was written but before the state naming it was:
    (store.blocks_dir / f"{orphan.hash}.json").write_text(json.dumps(orphan.to_json()))
    reopened = SignStore(store.path)
    assert reopened.load() == state(kept)
    reopened.save(state(kept, step=Step.PRECOMMIT))
    assert sorted(p.name for p in store.blocks_dir.iterdir()) == [f"{kept.hash}.json"]


@pytest.mark.parametrize("damage", ["missing", "altered", "renamed"])
def test_a_damaged_block_file_refuses_to_start(tmp_path: Path, damage: str) -> None:
    store = SignStore(tmp_path / "signstate.json")
    b = block([tx(1), tx(2)])
    store.save(state(b))
    path = store.blocks_dir / f"{b.hash}.json"
    if damage == "missing":
        path.unlink()
    elif damage == "altered":
        data = json.loads(path.read_text())
        data["txs"] = data["txs"][:1]  # the header no longer matches the body
        path.write_text(json.dumps(data))
    else:
        path.rename(store.blocks_dir / f"{'0' * 64}.json")
    with pytest.raises(LedgerError, match="refusing to start"):
        SignStore(store.path).load()


def test_a_state_written_with_inline_blocks_still_loads(tmp_path: Path) -> None:
    b = block([tx(1)])
    path = tmp_path / "signstate.json"
    inline = state(b).to_json()
    inline["locked_value"]["txs"] = [t.to_json() for t in b.txs]  # objects, as before
    path.write_text(json.dumps(inline))
    assert SignStore(path).load() == state(b)
