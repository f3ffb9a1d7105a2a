"""The verifier finds every single-byte corruption made directly in the database, on
SQLite and PostgreSQL, and names the height where it is."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from ledger.verify import verify_store
from nodes.devchain import DevChain

BLOCKS = 55
CORRUPTIONS = 60


@dataclass(frozen=True)
class Cell:
    """One stored value: which row, which column, and at what height it lives."""

    table: str
    column: str
    key: str  # SQL predicate selecting the row
    params: tuple[tuple[str, object], ...]
    height: int


def build_chain(park: Consortium, url: str) -> Store:
    rng = random.Random(55)
    store = Store(url)
    chain = DevChain(park.genesis, park.validator_keys, store)
    n = 0
    for _ in range(BLOCKS):
        count = rng.randint(0, 4)
        chain.commit_block([sample_event_tx(park, n + i) for i in range(count)])
        n += count
    return store


def cells(store: Store) -> list[Cell]:
    found: list[Cell] = []
    with store.engine.connect() as conn:
        for (height,) in conn.execute(text("select height from blocks")):
            for column in ("header", "commit", "evidence", "hash"):
                found.append(Cell("blocks", column, "height = :h", (("h", height),), height))
        for tx_id, height in conn.execute(text("select id, height from transactions")):
            found.append(Cell("transactions", "envelope", "id = :i", (("i", tx_id),), height))
    return found


def read(store: Store, cell: Cell) -> object:
    sql = text(f'select "{cell.column}" from {cell.table} where {cell.key}')
    with store.engine.connect() as conn:
        return conn.execute(sql, dict(cell.params)).scalar_one()


def write(store: Store, cell: Cell, value: object) -> None:
    sql = text(f'update {cell.table} set "{cell.column}" = :v where {cell.key}')
    with store.engine.begin() as conn:
        conn.execute(sql, {"v": value, **dict(cell.params)})


def corrupt(value: object, rng: random.Random) -> object:
    """Change exactly one byte. Text stays valid UTF-8 (PostgreSQL insists): an ASCII
    character is replaced by another printable ASCII character."""
    if isinstance(value, bytes):
        i = rng.randrange(len(value))
        return value[:i] + bytes([value[i] ^ (1 << rng.randrange(8))]) + value[i + 1 :]
    assert isinstance(value, str)
    positions = [i for i, ch in enumerate(value) if ord(ch) < 128]
    i = rng.choice(positions)
    replacement = rng.choice([chr(c) for c in range(32, 127) if chr(c) != value[i]])
    return value[:i] + replacement + value[i + 1 :]


def test_single_byte_corruptions_are_found_at_their_height(park: Consortium, db_url: str) -> None:
    store = build_chain(park, db_url)
    clean = verify_store(store, park.genesis)
    assert clean.ok, clean.problem
    assert clean.blocks == BLOCKS and clean.transactions > 50

    rng = random.Random(0xC0FFEE)
    targets = cells(store)
    # Every kind of cell is hit at least once, the rest at random.
    kinds: dict[tuple[str, str], list[Cell]] = {}
    for cell in targets:
        kinds.setdefault((cell.table, cell.column), []).append(cell)
    chosen = [rng.choice(group) for group in kinds.values()]
    chosen += [rng.choice(targets) for _ in range(CORRUPTIONS - len(chosen))]
    for cell in chosen:
        original = read(store, cell)
        write(store, cell, corrupt(original, rng))
        report = verify_store(store, park.genesis)
        write(store, cell, original)
        assert not report.ok, f"corrupting {cell} went unnoticed"
        assert report.problem.height == cell.height, (cell, report.problem)
    assert verify_store(store, park.genesis).ok
    store.close()


def test_missing_block_and_extra_rows_are_found(park: Consortium, db_url: str) -> None:
    store = build_chain(park, db_url)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "delete from product_index where log_index in "
                "(select log_index from transactions where height = 7)"
            )
        )
    report = verify_store(store, park.genesis)
    assert not report.ok and report.problem.height == 7
    assert "product index" in report.problem.what
    store.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_verify_command(
    park: Consortium, db: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'node.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    )
    store = build_chain(park, url)
    genesis_file = tmp_path / "genesis.json"
    park.genesis.write(genesis_file)

    ok = run_cli("verify", "--db", url, "--genesis", str(genesis_file))
    assert ok.returncode == 0, ok.stderr
    assert f"{BLOCKS} blocks" in ok.stdout

    as_json = json.loads(run_cli("verify", "--db", url, "--json").stdout)
    assert as_json["ok"] is True and as_json["head_height"] == BLOCKS

    cell = Cell("blocks", "header", "height = :h", (("h", 31),), 31)
    original = read(store, cell)
    write(store, cell, original.replace('"height":31', '"height":32'))
    bad = run_cli("verify", "--db", url, "--genesis", str(genesis_file))
    assert bad.returncode == 1
    assert "FAILED at height 31" in bad.stderr
    assert "Traceback" not in bad.stderr
    store.close()


def test_verify_command_bad_input(tmp_path) -> None:
    missing = run_cli("verify", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "schema is at nothing" in missing.stderr
    nofile = run_cli(
        "verify", "--db", str(tmp_path / "x.db"), "--genesis", str(tmp_path / "g.json")
    )
    assert nofile.returncode == 2 and "Traceback" not in nofile.stderr
    badurl = run_cli("verify", "--db", "postgresql://nobody@127.0.0.1:1/x")
    assert badurl.returncode == 2 and "cannot open database" in badurl.stderr


def test_a_live_verification_stops_at_the_height_it_started_from(
    park: Consortium, tmp_path
) -> None:
    """Blocks committed while the verifier reads (past its first page of blocks) are left
    to the next run, not reported as missing."""
    store = Store(f"sqlite:///{tmp_path / 'live.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    for _ in range(300):  # more than one page of the block reader
        chain.commit_block([])
    appended: list[int] = []

    def commit_meanwhile(height: int, total: int) -> None:
        if height % 50 == 1:
            appended.append(chain.commit_block([]).header.height)

    try:
        report = verify_store(store, park.genesis, progress=commit_meanwhile)
        assert report.ok, report.problem
        assert report.head_height == report.blocks == 300
        assert appended and store.height() == 300 + len(appended)
        assert verify_store(store, park.genesis).head_height == store.height()
    finally:
        store.close()
