"""A node's verified checkpoint: a restart from it reaches exactly the state a full
verification reaches, a checkpoint that cannot be trusted is not used, and the re-hash of
the blocks below it finds every changed byte that a full verification finds."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
from pathlib import Path

import pytest
from sqlalchemy import text

from devtools.samples import ruled_consortium, sample_event_tx
from ledger import checkpoint, codec
from ledger.checkpoint import CheckpointError
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from ledger.integrity import check_prefix
from ledger.store import Store
from ledger.verify import Tip, restore_chain
from nodes import checkpoints
from nodes.devchain import DevChain
from tests.conftest import FIXED_NOW
from tests.test_verify import build_chain, cells, corrupt, read, write
from traceability.validity import trace_rules

KEY = PrivateKey.from_seed(bytes(range(32)))


def tip_of(store: Store, park: Consortium) -> Tip:
    return restore_chain(store, park.genesis, rules=trace_rules)


def same_state(a: Tip, b: Tip) -> None:
    assert a.state == b.state
    assert a.membership == b.membership
    assert a.last_commit == b.last_commit
    assert a.evidence_keys == b.evidence_keys
    assert a.rules is not None and b.rules is not None
    assert a.rules.recalls == b.rules.recalls
    assert a.rules.trust.versions == b.rules.trust.versions
    assert dict(a.rules.trust.plots) == dict(b.rules.trust.plots)


@pytest.fixture(params=["sample", "ruled"])
def consortium(request: pytest.FixtureRequest, park: Consortium) -> Consortium:
    """The sample park, and one whose genesis carries trust rules (GI zones, yields)."""
    return park if request.param == "sample" else ruled_consortium(FIXED_NOW)


def test_a_restart_from_a_checkpoint_reaches_the_state_a_full_verification_reaches(
    consortium: Consortium, db_url: str, tmp_path: Path
) -> None:
    park = consortium
    store = Store(db_url)
    chain = DevChain(park.genesis, park.validator_keys, store)
    for i in range(12):
        chain.commit_block([sample_event_tx(park, 3 * i + j) for j in range(3)])
    path = tmp_path / checkpoints.FILE_NAME
    written = checkpoint.write(path, tip_of(store, park), store, KEY, park.genesis.hash)
    for i in range(12, 20):  # blocks stored after the checkpoint
        chain.commit_block([sample_event_tx(park, 3 * i + j) for j in range(3)])

    fresh = Store(db_url)  # as a restarted node opens it
    restored = checkpoints.restore(fresh, park.genesis, KEY, path, trace_rules)
    assert restored.checkpoint is not None and restored.checkpoint.height == written.height == 12
    same_state(restored.tip, tip_of(store, park))
    assert restored.tip.state.height == 20
    # The domain's lookups read the store the node opened, keyed as the rules key goods.
    assert restored.tip.rules.lookup.store is fresh
    assert fresh.index is not None
    fresh.close()
    assert (
        check_prefix(
            store, park.genesis.hash, 12, written.head_hash, written.tip.last_commit.hash()
        )
        is None
    )
    store.close()


def test_the_blocks_above_the_checkpoint_are_verified_in_full(
    park: Consortium, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    chain.commit_block([sample_event_tx(park, 0)])
    path = tmp_path / checkpoints.FILE_NAME
    checkpoint.write(path, tip_of(store, park), store, KEY, park.genesis.hash)
    chain.commit_block([sample_event_tx(park, 1)])
    with store.engine.begin() as conn:
        conn.execute(text("update blocks set time = '2020-01-01T00:00:00.000Z' where height = 2"))
    with pytest.raises(Exception, match="fails verification at height 2"):
        checkpoints.restore(store, park.genesis, KEY, path, trace_rules)
    store.close()


def flip_last_byte(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))


def sign_other_key(path: Path, store: Store, park: Consortium) -> None:
    checkpoint.write(path, tip_of(store, park), store, PrivateKey.generate(), park.genesis.hash)


def signed_foreign_pickle(path: Path, store: Store, park: Consortium) -> None:
    """A correctly signed file whose state names a class outside the ledger's packages."""
    checkpoint.write(path, tip_of(store, park), store, KEY, park.genesis.hash)
    head, _, _ = path.read_bytes().partition(b"\n")
    state = pickle.dumps(os.getcwd)  # a function of the os module: not a ledger value
    doc = json.loads(head)["checkpoint"]
    doc["state_sha256"] = hashlib.sha256(state).hexdigest()
    signature = codec.b64encode(KEY.sign(codec.domain_bytes("checkpoint", doc)))
    path.write_bytes(codec.canonical({"checkpoint": doc, "signature": signature}) + b"\n" + state)


def drop_block(store: Store, height: int) -> None:
    """Delete block `height` and every row that refers to it, as a lost write would."""
    with store.engine.begin() as conn:
        below = "select log_index from transactions where height = :h"
        for table in ("product_index", "claims", "tallies"):
            conn.execute(text(f"delete from {table} where log_index in ({below})"), {"h": height})
        conn.execute(text("delete from transactions where height = :h"), {"h": height})
        conn.execute(text("delete from blocks where height = :h"), {"h": height})


def store_behind(path: Path, store: Store, park: Consortium) -> None:
    checkpoint.write(path, tip_of(store, park), store, KEY, park.genesis.hash)
    drop_block(store, store.height())


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda path, store, park: None, "no checkpoint yet"),
        (lambda path, store, park: path.write_bytes(b"\x00garbage"), "malformed"),
        (
            lambda path, store, park: (
                checkpoint.write(path, tip_of(store, park), store, KEY, park.genesis.hash),
                flip_last_byte(path),
            ),
            "differs from the one signed",
        ),
        (sign_other_key, "not signed by this node's key"),
        (signed_foreign_pickle, "may not appear in a checkpoint"),
        (
            lambda path, store, park: checkpoint.write(
                path, tip_of(store, park), store, KEY, "00" * 32
            ),
            "another chain",
        ),
    ],
    ids=["missing", "garbage", "changed", "other-key", "foreign-class", "other-chain"],
)
def test_a_checkpoint_that_cannot_be_trusted_is_refused_with_its_reason(
    park: Consortium, tmp_path: Path, spoil, reason: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    for i in range(3):
        chain.commit_block([sample_event_tx(park, i)])
    path = tmp_path / checkpoints.FILE_NAME
    spoil(path, store, park)
    with pytest.raises(CheckpointError, match=reason):
        checkpoint.read(path, KEY.public_key, store, park.genesis.hash)
    # The node then verifies its whole store and goes on from there.
    restored = checkpoints.restore(store, park.genesis, KEY, path, trace_rules)
    assert restored.checkpoint is None and restored.tip.state.height == 3
    store.close()


def test_a_store_behind_its_checkpoint_is_verified_in_full(
    park: Consortium, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    for _ in range(3):
        chain.commit_block([])
    path = tmp_path / checkpoints.FILE_NAME
    store_behind(path, store, park)
    with caplog.at_level("INFO", logger="parktrace.node"):
        restored = checkpoints.restore(store, park.genesis, KEY, path, trace_rules)
    assert restored.checkpoint is None and restored.tip.state.height == 2
    assert "the store holds 2 blocks, the checkpoint 3" in caplog.text
    store.close()


def test_the_rehash_below_a_checkpoint_finds_every_changed_byte_at_its_height(
    park: Consortium, db_url: str
) -> None:
    store = build_chain(park, db_url)
    tip = tip_of(store, park)
    height, head = tip.state.height, tip.state.head_hash
    commit = tip.last_commit.hash()
    assert check_prefix(store, park.genesis.hash, height, head, commit) is None
    rng = random.Random(0xBEEF)
    targets = cells(store)
    kinds: dict[tuple[str, str], list] = {}
    for cell in targets:
        kinds.setdefault((cell.table, cell.column), []).append(cell)
    chosen = [rng.choice(group) for group in kinds.values()]
    chosen += [rng.choice(targets) for _ in range(40 - len(chosen))]
    for cell in chosen:
        original = read(store, cell)
        write(store, cell, corrupt(original, rng))
        problem = check_prefix(store, park.genesis.hash, height, head, commit)
        write(store, cell, original)
        assert problem is not None, f"corrupting {cell} went unnoticed"
        assert problem.height == cell.height, (cell, problem)
    drop_block(store, 9)
    problem = check_prefix(store, park.genesis.hash, height, head, commit)
    assert problem is not None and problem.height == 9 and "missing" in problem.what
    store.close()
