"""The verifier over a pool of worker processes (`verify_store(workers=…)`, `parktrace
verify --workers`) reaches the same verdict as the single-process one: the same counts
on an intact chain, and the same first problem, at the same height, for a byte changed in
the middle of a range, at a range's first or last block, in a derived column, or for a
block that is missing."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import text

from ledger.consortium import Consortium
from ledger.store import Store
from ledger.verify import Checked, verify_store
from tests.test_verify import Cell, build_chain, cells, corrupt, read, run_cli, write
from traceability.validity import trace_rules

CHUNK = 5  # blocks per worker task: ranges 1-5, 6-10, 11-15, …


def verdict(store: Store, park: Consortium, workers: int) -> dict[str, Any]:
    report = verify_store(store, park.genesis, rules=trace_rules, workers=workers, chunk=CHUNK)
    data = report.to_json()
    data.pop("seconds")
    return data


@pytest.fixture
def store(park: Consortium, tmp_path) -> Any:
    built = build_chain(park, f"sqlite:///{tmp_path / 'node.db'}")
    yield built
    built.close()


def same_verdict(store: Store, park: Consortium) -> dict[str, Any]:
    one, two = verdict(store, park, 1), verdict(store, park, 2)
    assert one == two
    return two


def test_an_intact_chain_verifies_the_same_in_parallel(store: Store, park: Consortium) -> None:
    seen: list[Checked] = []
    report = verify_store(
        store, park.genesis, rules=trace_rules, workers=2, chunk=CHUNK, on_checked=seen.append
    )
    assert report.ok, report.problem
    assert [c.height for c in seen] == list(range(1, report.blocks + 1))
    assert seen[-1].events == seen[-1].events_total == report.transactions
    assert same_verdict(store, park)["ok"]


def _cell(store: Store, table: str, column: str, height: int) -> Cell:
    return next(c for c in cells(store) if (c.table, c.column, c.height) == (table, column, height))


@pytest.mark.parametrize(
    ("table", "column", "height", "where"),
    [
        ("blocks", "header", 13, "middle of a range"),
        ("blocks", "header", 16, "first block of a range (its link to the range before)"),
        ("blocks", "commit", 15, "last block of a range"),
        ("blocks", "hash", 11, "first block of a range"),
    ],
)
def test_a_changed_byte_is_found_at_the_same_height(
    store: Store, park: Consortium, table: str, column: str, height: int, where: str
) -> None:
    cell = _cell(store, table, column, height)
    write(store, cell, corrupt(read(store, cell), random.Random(height)))
    found = same_verdict(store, park)
    assert not found["ok"] and found["problem"]["height"] == height, where


def test_changed_transactions_are_found_at_the_same_height(store: Store, park: Consortium) -> None:
    rng = random.Random(23)
    txs = [c for c in cells(store) if c.table == "transactions"]
    boundary = [c for c in txs if c.height % CHUNK in (0, 1)]
    for cell in [rng.choice(boundary), rng.choice(txs), rng.choice(txs)]:
        original = read(store, cell)
        write(store, cell, corrupt(original, rng))
        found = same_verdict(store, park)
        write(store, cell, original)
        assert not found["ok"] and found["problem"]["height"] == cell.height, cell


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        (
            "delete from product_index where log_index in "
            "(select log_index from transactions where height = {h})",
            "product index",
        ),
        (
            "delete from claims where log_index in "
            "(select log_index from transactions where height = {h})",
            "claims index",
        ),
        ("update transactions set type = 'epcis.evil' where height = {h}", "type/signer"),
    ],
)
def test_a_changed_derived_column_is_found_the_same(
    store: Store, park: Consortium, sql: str, what: str
) -> None:
    with store.engine.connect() as conn:
        height = max(
            h for (h,) in conn.execute(text("select distinct height from transactions")) if h < 30
        )
    with store.engine.begin() as conn:
        conn.execute(text(sql.format(h=height)))
    found = same_verdict(store, park)
    assert not found["ok"] and found["problem"]["height"] == height
    assert what in found["problem"]["what"]


def test_a_missing_block_is_found_the_same(store: Store, park: Consortium) -> None:
    with store.engine.connect() as conn:  # the block row only: the reader skips its height
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        conn.execute(text("delete from blocks where height = 20"))
        conn.commit()
    found = same_verdict(store, park)
    assert found["problem"] == {"height": 21, "what": "block 20 is missing"}


def test_verify_command_with_workers_and_progress(store: Store, park: Consortium) -> None:
    url = store.url
    done = run_cli("verify", "--db", url, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "2 worker processes" in done.stdout
    cell = _cell(store, "blocks", "header", 16)
    write(store, cell, corrupt(read(store, cell), random.Random(1)))
    failed = run_cli("verify", "--db", url, "--workers", "2")
    assert failed.returncode == 1 and "FAILED at height 16" in failed.stderr
