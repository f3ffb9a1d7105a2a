"""Faults on four real node processes under steady load, each followed by a history check.

One LocalNet serves the whole module. A load generator submits about RATE sample
EPCIS events a second, round-robin over the nodes that are up, and remembers every id a
node answered `pending`. A height watcher polls /healthz about ten times a second. After
each fault the history checker asserts: every acknowledged transaction is committed on
every node (a client that reads `unknown` resubmits the same envelope, as docs/api.md
asks: a 202 is not durable), block hashes agree at every common height, no
`duplicate_vote` evidence was committed, and commits resumed within COMMIT_BOUND. The
longest gap between commits during each fault goes into the summary line that
tests/conftest.py prints at the end of the run.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devtools import cluster
from devtools.samples import sample_event_tx
from ledger.consortium import build_consortium
from ledger.timefmt import parse_time
from ledger.tx import Transaction
from nodes.consensus.config import Config as ConsensusConfig
from tests import hostile
from tests.fault_record import RECORD
from tests.localnet import LocalNet

pytestmark = pytest.mark.slow

#: Transactions a second the load generator aims at, in batches of BATCH; like a
#: careful client it holds back while a node's mempool is deeper than BACKLOG (on a busy
#: machine the cluster commits less than RATE, and a backlog would only grow).
RATE = 150
BATCH = 20
BACKLOG = 1500
#: The consortium's certificates are this old when the suite starts, as in any running
#: consortium: a clock five minutes slow then still finds them valid (see _skewed).
CERTIFICATE_AGE = timedelta(minutes=10)
#: Every acknowledged transaction must be committed on every node within this.
SETTLE = 90.0
#: Commits must resume within this after any fault; the measured gaps are reported.
COMMIT_BOUND = 60.0
#: Each fault's stride: how long a node stays stopped, frozen or cut off.
OUTAGE = 3.0
MAX_TIME_AHEAD = ConsensusConfig().max_time_ahead  # the nodes run with the default
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


class Load(threading.Thread):
    """Submits sample events to the live nodes; remembers what each node acknowledged."""

    def __init__(self, net: FaultNet) -> None:
        super().__init__(name="load", daemon=True)
        self.net = net
        self.http = httpx.Client(timeout=5)
        self.lock = threading.Lock()
        self.acknowledged: dict[str, Transaction] = {}
        self.refused: Counter[str] = Counter()
        self.unanswered = 0
        self.held_back = 0
        self.counter = 1_000_000
        self.done = threading.Event()
        self.paused = threading.Event()

    def run(self) -> None:
        turn = 0
        pause = BATCH / RATE
        while not self.done.is_set():
            started = time.monotonic()
            targets = sorted(self.net.live)
            if self.paused.is_set():
                pass
            elif targets and max(self.net.heights.mempool.values(), default=0) > BACKLOG:
                self.held_back += 1
            elif targets:
                self.submit(targets[turn % len(targets)])
                turn += 1
            self.done.wait(max(0.0, pause - (time.monotonic() - started)))
        self.http.close()

    def submit(self, node_id: str) -> None:
        txs = [sample_event_tx(self.net.consortium, self.counter + i) for i in range(BATCH)]
        self.counter += BATCH
        try:
            response = self.http.post(
                f"{self.net.url(node_id)}/v1/transactions/batch",
                json={"transactions": [tx.to_json() for tx in txs]},
            )
            results = response.json()["results"]
        except (httpx.HTTPError, ValueError, KeyError):
            self.unanswered += 1  # the node went down mid-request: nothing acknowledged
            return
        by_id = {tx.id: tx for tx in txs}
        with self.lock:
            for result in results:
                if result["state"] == "pending":
                    self.acknowledged[result["id"]] = by_id[result["id"]]
                else:
                    self.refused[f"{node_id}: {result.get('error', {}).get('message', '')}"] += 1

    def snapshot(self) -> dict[str, Transaction]:
        with self.lock:
            return dict(self.acknowledged)


class Heights(threading.Thread):
    """Polls the live nodes' heights ~10x a second; notes when the cluster's height grew."""

    def __init__(self, net: FaultNet) -> None:
        super().__init__(name="heights", daemon=True)
        self.net = net
        self.http = httpx.Client(timeout=0.5)
        self.commits: list[tuple[float, int]] = []
        self.mempool: dict[str, int] = {}
        self.top = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for node_id in sorted(self.net.live):
                try:
                    info = self.http.get(f"{self.net.url(node_id)}/healthz").json()
                    height, self.mempool[node_id] = info["height"], info["mempool"]
                except (httpx.HTTPError, ValueError, KeyError):
                    continue
                if height > self.top:
                    self.top = height
                    self.commits.append((time.monotonic(), height))
            self.done.wait(0.1)
        self.http.close()

    def longest_gap(self, start: float, end: float) -> float:
        moments = [start, *(t for t, _ in list(self.commits) if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(moments))


class FaultNet(LocalNet):
    def __init__(self, directory: Path) -> None:
        made = datetime.now(UTC).replace(microsecond=0) - CERTIFICATE_AGE
        build_consortium(cluster.consortium_config(4), made).write(directory / "consortium")
        super().__init__(directory, timeout=10)
        self.validators = self.genesis.validator_set()
        self.ids = [m.id for m in self.members]
        self.live: set[str] = set()
        self.load = Load(self)
        self.heights = Heights(self)

    # -- handling nodes ----------------------------------------------------------------------
    def launch(
        self, *ids: str, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> None:
        """Start `ids` (as cluster.start would, with `env` and `command`) and wait until
        each answers; then they take load again."""
        for node_id in ids:
            cluster.start(self.dir, node_id, env=env, command=command)
        missing = cluster.wait_ready(self.dir, [self.by_id[i] for i in ids], 90)
        assert not missing, f"never ready: {missing}; {self.log(missing[0])[-3000:]}"
        self.live.update(ids)

    def kill(self, node_id: str) -> None:
        self.live.discard(node_id)
        self.signal(node_id, signal.SIGKILL)

    def halt(self, node_id: str) -> None:
        """A clean stop (SIGTERM): the store is checkpointed and closed."""
        self.live.discard(node_id)
        cluster.stop(self.dir, node_id)

    @contextmanager
    def frozen(self, node_id: str) -> Iterator[None]:
        self.live.discard(node_id)
        self.signal(node_id, signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal(node_id, signal.SIGCONT)
            self.live.add(node_id)

    def recover(self) -> None:
        """Every node running and taking load, whatever a fault left behind."""
        for node_id in self.ids:
            pid = cluster.pid_of(self.dir, node_id)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
        self.launch(*self.ids)

    def proposer(self) -> str:
        """The proposer of the height and round the cluster is working on now."""
        info = self.health(sorted(self.live)[0])
        return self.validators.proposer(info["height"] + 1, info["round"]).id

    def follower(self) -> str:
        proposer = self.proposer()
        return next(i for i in reversed(self.ids) if i != proposer and i in self.live)

    def patient_height(self, node_id: str) -> int | None:
        """Its height, or None while it does not answer (applying a batch of caught-up
        blocks, a node's API can be silent for seconds)."""
        info = cluster.health(self.by_id[node_id], timeout=2.0)
        return None if info is None else info["height"]

    def tip(self) -> int:
        return max(self.height(n) for n in self.live)

    def caught_up(self, node_id: str, within: float = 60) -> None:
        """Wait until `node_id` is as high as the others were when this was called."""
        behind = max(self.height(n) for n in self.live if n != node_id)
        deadline = time.monotonic() + within
        while (self.patient_height(node_id) or 0) < behind and time.monotonic() < deadline:
            time.sleep(0.2)

    # -- reading stores beside the nodes -----------------------------------------------------
    def query(self, node_id: str, sql: str) -> list[tuple]:
        db = self.dir / node_id / "node.db"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
            return conn.execute(sql).fetchall()

    def committed_ids(self, node_id: str) -> set[str]:
        return {row[0].hex() for row in self.query(node_id, "SELECT id FROM transactions")}

    def block_hashes(self, node_id: str) -> dict[int, bytes]:
        return dict(self.query(node_id, "SELECT height, hash FROM blocks"))

    def equivocations(self, node_id: str) -> list[tuple[int, dict]]:
        rows = self.query(node_id, "SELECT height, evidence FROM blocks WHERE evidence != '[]'")
        return [
            (height, record)
            for height, text in rows
            for record in json.loads(text)
            if record.get("type") == "duplicate_vote"
        ]

    def signed_at(self, node_id: str, signer: str, low: int, high: int) -> list[int]:
        """Heights in [low, high] whose certificate in `node_id`'s store `signer` signed."""
        rows = self.query(
            node_id, f"SELECT height, [commit] FROM blocks WHERE height BETWEEN {low} AND {high}"
        )
        return [
            height
            for height, text in rows
            if any(s["validator"] == signer for s in json.loads(text)["signatures"])
        ]

    def last_logged(self, node_id: str, pattern: str) -> re.Match[str]:
        found = list(re.finditer(pattern, self.log(node_id)))
        assert found, f"{node_id} never logged {pattern!r}"
        return found[-1]

    # -- the history checker -----------------------------------------------------------------
    def check(self, name: str | None, started: float, note: str = "") -> None:
        """After a fault, with every node back: nothing acknowledged is lost, the nodes
        agree on every common height, nobody equivocated, and commits resumed in time.
        `name`: the fault, whose longest commit gap goes into the summary."""
        assert self.live == set(self.ids), f"{name} left nodes down: {set(self.ids) - self.live}"
        acknowledged = self.load.snapshot()
        missing = self._wait_all_committed(acknowledged)
        gap = self.heights.longest_gap(started, time.monotonic())
        hashes = {n: self.block_hashes(n) for n in self.ids}
        common = set.intersection(*(set(h) for h in hashes.values()))
        forks = sorted(h for h in common if len({hashes[n][h] for n in self.ids}) > 1)
        evidence = {n: self.equivocations(n) for n in self.ids}
        RECORD.acknowledged = len(acknowledged)
        RECORD.lost = len(missing)
        RECORD.equivocations = max(len(found) for found in evidence.values())
        if name is not None:
            RECORD.add(name, gap, note)
        assert not missing, f"{len(missing)} acknowledged transactions never committed"
        assert not forks, f"nodes disagree at heights {forks[:5]}"
        assert not any(evidence.values()), f"equivocation evidence committed: {evidence}"
        assert gap < COMMIT_BOUND, f"{name}: no commit for {gap:.1f} s"

    def _wait_all_committed(self, acknowledged: dict[str, Transaction]) -> set[str]:
        """Wait until every acknowledged id is in every store; resubmit those that every
        node has forgotten (the client's side of a 202). Returns what never arrived."""
        wanted = set(acknowledged)
        deadline = time.monotonic() + SETTLE
        next_resubmit = time.monotonic() + 2
        while True:
            missing = {n: wanted - self.committed_ids(n) for n in self.ids}
            if not any(missing.values()) or time.monotonic() > deadline:
                return set().union(*missing.values())
            if time.monotonic() > next_resubmit:
                self._resubmit_forgotten(set.intersection(*missing.values()), acknowledged)
                next_resubmit = time.monotonic() + 3
            time.sleep(0.5)

    def _resubmit_forgotten(self, ids: set[str], acknowledged: dict[str, Transaction]) -> None:
        node = self.url(self.ids[0])
        ordered = sorted(ids)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            states = self.http.post(f"{node}/v1/transactions/status", json={"ids": chunk}).json()
            forgotten = [s["id"] for s in states["statuses"] if s["state"] == "unknown"]
            if forgotten:
                batch = [acknowledged[t].to_json() for t in forgotten]
                self.http.post(f"{node}/v1/transactions/batch", json={"transactions": batch})
                RECORD.resubmitted += len(forgotten)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultNet]:
    n = FaultNet(tmp_path_factory.mktemp("faults"))
    n.launch(*n.ids)
    n.load.start()
    n.heights.start()
    yield n
    n.load.done.set()
    n.heights.done.set()
    n.load.join(10)
    n.heights.join(10)
    for node_id in n.ids:
        pid = cluster.pid_of(n.dir, node_id)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
    n.stop_all()


def _committing(net: FaultNet, timeout: float = 30) -> None:
    """Wait until the cluster commits a block while the load runs (faults start from a
    working cluster)."""
    start = net.heights.top
    deadline = time.monotonic() + timeout
    while net.heights.top <= start and time.monotonic() < deadline:
        time.sleep(0.1)
    assert net.heights.top > start, "the cluster is not committing"


def fault(net: FaultNet, name: str, inject: Callable[[], str | None]) -> None:
    """Run one fault from a working cluster, then the history check. A fault that fails
    still leaves every node running, so the next one starts from a whole cluster."""
    _committing(net)
    started = time.monotonic()
    try:
        note = inject()
    finally:
        net.recover()
    net.check(name, started, note or "")


# -- damaged files -------------------------------------------------------------------------
def _flip_one_byte(db: Path, table: str) -> str:
    """Change one character of one row of `table` to another of its kind; say which."""
    with closing(sqlite3.connect(db)) as conn, conn:
        column, where = {
            "meta": ("value", "key = 'genesis'"),
            "blocks": ("header", "height >= 2 ORDER BY height"),
            "transactions": ("envelope", "1 ORDER BY log_index"),
            "product_index": ("identifier", "1 ORDER BY log_index"),
            "log_nodes": ("hash", "level = 0 ORDER BY [index]"),
        }[table]
        query = f"SELECT rowid, {column} FROM {table} WHERE {where} LIMIT 1"
        rowid, value = conn.execute(query).fetchone()
        if isinstance(value, bytes):
            flipped: str | bytes = bytes([value[0] ^ 0x01]) + value[1:]
        else:
            at = next(i for i in range(len(value) // 2, len(value)) if value[i] in "0123456789")
            flipped = value[:at] + str((int(value[at]) + 1) % 10) + value[at + 1 :]
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (flipped, rowid))
    return f"{table}.{column}"


def test_one_flipped_byte_in_each_table(net: FaultNet) -> None:
    while net.tip() < 3:  # a block 2 and some transactions to damage
        time.sleep(0.2)

    def inject() -> str:
        victim = net.follower()
        net.halt(victim)
        folder = net.dir / victim
        db = folder / "node.db"
        pristine = folder / "pristine"
        pristine.mkdir()
        saved = [f for f in folder.glob("node.db*") if f.is_file()]
        for f in saved:
            shutil.copy2(f, pristine / f.name)

        def restore() -> None:
            for f in folder.glob("node.db*"):
                f.unlink()
            for f in saved:
                shutil.copy2(pristine / f.name, f)

        tables = ["meta", "blocks", "transactions", "product_index", "log_nodes"]
        refusals: list[str] = []
        try:
            for table in tables:
                where = _flip_one_byte(db, table)
                config = str(folder / "node.toml")
                run = subprocess.run(
                    [sys.executable, "-m", "cli", "node", "run", "--config", config],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert run.returncode != 0, f"started with a flipped byte in {where}"
                # Its log records (JSON, one a line) may come first; then one line of error.
                said = [x for x in run.stderr.splitlines() if x and not x.startswith('{"')]
                assert "Traceback" not in run.stderr and len(said) == 1, (where, run.stderr)
                assert said[0].startswith("error: the store fails verification"), (where, said)
                refusals.append(said[0].removeprefix("error: the store fails verification "))
                restore()
        finally:
            restore()
            shutil.rmtree(pristine)
        net.launch(victim)
        return f"refused {len(refusals)} of {len(tables)}: " + "; ".join(refusals)

    fault(net, "flipped-bytes", inject)


# -- hostile clients ---------------------------------------------------------------------------
#: The longest the other three may go without a commit while one node is attacked.
ATTACK_GAP_BOUND = 2.0


def _attack(net: FaultNet, victim: str, huge: bytes) -> None:
    """Every client of tests/hostile.py against `victim` in turn, each answered as the
    one-node tests (tests/test_hostile_clients.py) expect."""
    url = net.url(victim)
    address = hostile.address_of(url)
    response, elapsed = hostile.post(url, "/v1/transactions/batch", huge)
    assert response.status_code == 413 and elapsed < 2.0, (response.status_code, elapsed)
    response, _ = hostile.post(url, "/v1/transactions/batch", hostile.amplifying_batch())
    assert response.status_code == 413, response.text
    answer = hostile.raw_request(address, hostile.huge_status_head(address))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    log = net.dir / victim / "node.log"
    logged = log.stat().st_size
    answers = [hostile.raw_request(address, hostile.MALFORMED) for _ in range(300)]
    assert all(a.startswith(b"HTTP/1.1 400") for a in answers), answers[0]
    assert log.stat().st_size - logged < 8 * 1024, "malformed requests flood the log"
    with hostile.idle_connections(address) as opened:
        assert hostile.turned_away(opened[-100:]) > 50
        assert hostile.wait_until_served(url, 3 * hostile.HEADER_TIMEOUT), "never served"
    closed_at = hostile.slowloris(address)
    assert len(closed_at) == 50, f"{50 - len(closed_at)} slowloris connections still open"
    assert max(closed_at.values()) <= 2 * hostile.HEADER_TIMEOUT + 1.5


def test_hostile_clients_against_one_node(net: FaultNet) -> None:
    """One node of four, restarted with 1,024 descriptors and a short header timeout, is
    attacked by every hostile client while the load runs on the other three: they keep
    committing (longest gap under ATTACK_GAP_BOUND), and the attacked node is alive,
    signing and caught up afterwards."""

    def inject() -> str:
        victim = net.follower()
        config = net.dir / victim / "node.toml"
        net.halt(victim)
        original = hostile.with_header_timeout(config)
        try:
            net.launch(victim, command=["-c", hostile.LIMITED_NODE, str(config.resolve())])
            net.caught_up(victim)
            huge = hostile.huge_batch()
            net.live.discard(victim)  # the load and the height watch are on the others
            started = time.monotonic()
            _attack(net, victim, huge)
            gap = net.heights.longest_gap(started, time.monotonic())
            attacked = time.monotonic() - started
            net.live.add(victim)
            net.caught_up(victim, within=10)
            assert net.height(victim) >= net.tip() - 1, "the attacked node fell behind"
            info = net.health(victim)
            assert info["signing"] and info["signstate_error"] is None, info
        finally:
            config.write_text(original)
            net.halt(victim)
            net.launch(victim)
        assert gap < ATTACK_GAP_BOUND, f"the other three went {gap:.1f} s without a commit"
        return f"{attacked:.0f} s of attacks, the other three's longest gap {gap:.1f} s"

    fault(net, "hostile-clients", inject)


# -- clocks ------------------------------------------------------------------------------------
def _faketime() -> str:
    lib = next((p for p in FAKETIME_LIBS if Path(p).exists()), None)
    if shutil.which("faketime") is None or lib is None:
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    return lib


def _skewed(net: FaultNet, offset: str) -> str:
    """Run one follower with its clock `offset` off, once it has caught up, for ~10 s of
    taking part under load; then on time again.

    What should happen: block times only have to increase (ledger/chain.py), a proposer
    stamps max(its clock, previous + 1 ms) (nodes/runtime.py), and a validator prevotes a
    fresh proposal only if its time is at most max_time_ahead past its own clock
    (proposer-based timestamps). Fast, the node's own proposals are refused by the others
    (it proposes nothing that is committed, and the chain's time stays within that bound
    of the wall clock); slow, it finds the others' proposals ahead of it and prevotes nil,
    while the other three still commit. It keeps up either way. Certificates are judged
    by the clock of the node that admits a transaction or opens a link, so they must be
    older than the skew (CERTIFICATE_AGE)."""
    lib = _faketime()
    victim = net.follower()
    others = [i for i in net.ids if i != victim]
    net.halt(victim)
    clock = {"LD_PRELOAD": lib, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    refused_before = sum(n for k, n in net.load.refused.items() if k.startswith(f"{victim}:"))
    try:
        net.launch(victim, env=clock)
        net.caught_up(victim)
        start = net.height(victim)
        before = max(net.height(n) for n in others)
        time.sleep(10)
        end = net.height(victim)
        assert max(net.height(n) for n in others) > before, "the cluster stopped committing"
        assert end > start, f"the node with its clock {offset} off was left behind"
    finally:
        net.halt(victim)  # on time again, whatever happened
        net.launch(victim)
    refused = sum(n for k, n in net.load.refused.items() if k.startswith(f"{victim}:"))
    rows = net.query(
        others[0], f"SELECT header FROM blocks WHERE height BETWEEN {start + 1} AND {end}"
    )
    proposed = sum(json.loads(header)["proposer"] == victim for (header,) in rows)
    ahead = _chain_time_ahead(net)
    if not offset.startswith("-"):
        assert proposed == 0, f"{proposed} blocks stamped by the fast clock were committed"
    assert ahead < MAX_TIME_AHEAD + 2, f"the chain's time ran {ahead:.0f} s ahead"
    return (
        f"took part in {end - start} blocks, proposed {proposed}, refused "
        f"{refused - refused_before} txs; chain time then {ahead:+.0f} s off the wall clock"
    )


def _chain_time_ahead(net: FaultNet) -> float:
    info = net.health(net.ids[0])
    return parse_time(info["last_block_time"]).timestamp() - time.time()


def test_clock_five_minutes_ahead(net: FaultNet) -> None:
    fault(net, "clock+5min", lambda: _skewed(net, "+5m"))


def test_clock_five_minutes_behind(net: FaultNet) -> None:
    fault(net, "clock-5min", lambda: _skewed(net, "-5m"))


# -- crashes and freezes -------------------------------------------------------------------
def _killed_for_an_outage(net: FaultNet, victim: str) -> None:
    net.kill(victim)
    time.sleep(OUTAGE)
    net.launch(victim)


def _frozen_for_an_outage(net: FaultNet, victim: str) -> None:
    with net.frozen(victim):
        time.sleep(OUTAGE)


def test_kill_proposer(net: FaultNet) -> None:
    fault(net, "kill-proposer", lambda: _killed_for_an_outage(net, net.proposer()))


def test_kill_follower(net: FaultNet) -> None:
    fault(net, "kill-follower", lambda: _killed_for_an_outage(net, net.follower()))


def test_sigstop_follower(net: FaultNet) -> None:
    fault(net, "sigstop-follower", lambda: _frozen_for_an_outage(net, net.follower()))


def test_sigstop_proposer(net: FaultNet) -> None:
    fault(net, "sigstop-proposer", lambda: _frozen_for_an_outage(net, net.proposer()))


def test_two_of_four_down_no_commit_then_resume(net: FaultNet) -> None:
    def inject() -> None:
        down = net.ids[:2]
        for node_id in down:
            net.kill(node_id)
        time.sleep(1.0)  # a block in flight when the second died may still land
        before = {n: net.height(n) for n in net.live}
        time.sleep(OUTAGE)
        assert {n: net.height(n) for n in net.live} == before, "committed without a quorum"
        net.launch(*down)

    fault(net, "two-down", inject)


def test_all_four_down_then_up(net: FaultNet) -> None:
    def inject() -> None:
        for node_id in net.ids:
            net.kill(node_id)
        time.sleep(1.0)
        net.launch(*net.ids)

    fault(net, "all-down", inject)


def test_kill_loop(net: FaultNet) -> None:
    def inject() -> str:
        deadline = time.monotonic() + 10
        turn = 0
        while time.monotonic() < deadline:
            victim = net.ids[turn % len(net.ids)]
            if victim in net.live:
                net.kill(victim)
            cluster.start(net.dir, victim)  # straight back, ready or not
            turn += 1
            time.sleep(2.0)
            net.live.update(
                i for i in net.ids if cluster.health(net.by_id[i], timeout=0.5) is not None
            )
        net.launch(*net.ids)
        return f"{turn} kills"

    fault(net, "kill-loop", inject)


# -- lost files -----------------------------------------------------------------------------
def _truncate_unsynced_wal(folder: Path) -> str:
    """Cut the SQLite WAL of a killed node to half of the frames its database file does
    not hold yet, as a power cut loses the tail that was never synced. Frames already
    copied into the database (up to nBackfill) were synced first, so they stay."""
    wal, shm = folder / "node.db-wal", folder / "node.db-shm"
    index = shm.read_bytes()
    max_frame = int.from_bytes(index[16:20], sys.byteorder)  # WalIndexHdr.mxFrame
    backfilled = int.from_bytes(index[96:100], sys.byteorder)  # WalCkptInfo.nBackfill
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    kept = backfilled + (max_frame - backfilled) // 2
    os.truncate(wal, 32 + kept * (24 + page))
    shm.unlink()  # the index of frames the disk no longer holds goes with them
    return f"{max_frame - kept} of {max_frame} WAL frames cut"


def _checkpointed_once(folder: Path) -> bool:
    """The WAL was reset after a checkpoint (its header's sequence number moved on): the
    store's schema is in the database file. (A node cut off before that, its migration
    not yet synced, is another fault: see docs/design-notes.md.)"""
    header = (folder / "node.db-wal").read_bytes()[:32]
    return len(header) == 32 and int.from_bytes(header[12:16], "big") > 0


def test_wal_truncated_after_kill(net: FaultNet) -> None:
    def inject() -> str:
        victim = net.follower()
        deadline = time.monotonic() + 120
        while not _checkpointed_once(net.dir / victim) and time.monotonic() < deadline:
            time.sleep(0.5)
        net.kill(victim)
        cut = _truncate_unsynced_wal(net.dir / victim)
        before = net.tip()
        logged = len(net.log(victim))
        net.launch(victim)
        restarted = int(net.last_logged(victim, r"started at height (\d+)").group(1))
        since_restart = net.log(victim)[logged:]
        tracebacks = [line for line in since_restart.splitlines() if "Traceback" in line]
        assert not tracebacks, tracebacks[0][:3000]
        return f"{cut}, node restarted {before - restarted} blocks back"

    fault(net, "wal-truncated", inject)


def test_sign_state_deleted(net: FaultNet) -> None:
    def inject() -> str:
        victim = net.proposer()
        net.kill(victim)
        (net.dir / victim / "signstate.json").unlink()
        net.launch(victim)
        assert "no sign state" in net.log(victim)[-5000:]
        deadline = time.monotonic() + 60
        while not net.health(victim)["signing"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert net.health(victim)["signing"], "never signed again"
        start = int(net.last_logged(victim, r"started at height (\d+)").group(1))
        horizon = int(net.last_logged(victim, r"may have signed up to height (\d+)").group(1))
        witness = next(i for i in net.ids if i != victim)
        signed = net.signed_at(witness, victim, start + 2, horizon)
        assert not signed, f"signed at {signed}, at or below its horizon {horizon}"
        return f"unsigned up to height {horizon}"

    fault(net, "signstate-deleted", inject)


# -- the network -------------------------------------------------------------------------------
def _iptables_unusable() -> str | None:
    if shutil.which("iptables") is None:
        return "iptables is not installed"
    probe = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"iptables is not permitted here: {probe.stderr.strip()}"
    return None


def _outbound_ports(pid: int, peer_ports: set[int]) -> set[int]:
    """Local ports of the links process `pid` dialled to its peers."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established"], capture_output=True, text=True, check=True
    ).stdout
    ports = set()
    for line in listing.splitlines():
        if f"pid={pid}," not in line:
            continue
        local, remote = line.split()[2:4]
        if int(remote.rpartition(":")[2]) in peer_ports:
            ports.add(int(local.rpartition(":")[2]))
    return ports


@contextmanager
def partitioned(net: FaultNet, node_id: str) -> Iterator[None]:
    """DROP every packet on loopback to or from the node's peer port and the links it
    dialled, both directions; the rules are removed whatever happens."""
    port = int(net.by_id[node_id].p2p.rpartition(":")[2])
    peers = {int(net.by_id[i].p2p.rpartition(":")[2]) for i in net.ids if i != node_id}
    pid = cluster.pid_of(net.dir, node_id)
    assert pid is not None
    ports = {port, *_outbound_ports(pid, peers)}
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", f"--{side}", str(p), "-j", "DROP"]
        for p in sorted(ports)
        for side in ("sport", "dport")
    ]
    added = []
    try:
        for rule in rules:
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(["iptables", "-D", *rule], capture_output=True)


def test_partition_one_node(net: FaultNet) -> None:
    reason = _iptables_unusable()
    if reason:
        pytest.skip(reason)

    def inject() -> str:
        victim = net.follower()
        others = [i for i in net.ids if i != victim]
        net.live.discard(victim)
        with partitioned(net, victim):
            time.sleep(1.0)
            cut_off_at = net.height(victim)
            before = max(net.height(n) for n in others)
            time.sleep(7.0)
            assert max(net.height(n) for n in others) > before, "three of four stopped"
            stuck = net.height(victim) - cut_off_at
        net.live.add(victim)
        return f"cut-off node moved {stuck} blocks"

    fault(net, "partition", inject)


# -- at the end ----------------------------------------------------------------------------------
def test_zz_every_store_verifies(net: FaultNet) -> None:
    """Last in the module (it runs alone as well): the stores of the running nodes,
    each checked from genesis by `parktrace verify`."""
    _committing(net)
    net.load.paused.set()  # the stores stop growing: each is checked whole, and sooner
    try:
        net.check(None, time.monotonic() - 1)
        _verify_every_store(net)
    finally:
        net.load.paused.clear()


def _verify_every_store(net: FaultNet) -> None:
    genesis = net.dir / "consortium" / "genesis.json"

    def verify(node_id: str) -> subprocess.CompletedProcess[str]:
        db = f"sqlite:///{net.dir / node_id / 'node.db'}"
        command = [sys.executable, "-m", "cli", "verify", "--genesis", str(genesis), "--db", db]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(net.ids, pool.map(verify, net.ids), strict=True))
    for node_id, run in results.items():
        assert run.returncode == 0, f"{node_id}: {run.stderr}"
