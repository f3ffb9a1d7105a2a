"""A Byzantine proposer among real node processes: three honest validators, started as
`parktrace cluster` starts them, and one faulty validator (tests/byzantine_node.py: the
real runtime with the domain rules removed) that proposes validly signed but invalid
EPCIS events whenever its turn comes. The honest validators must prevote nil on each such
proposal, never commit the events, and go on committing good work; and `parktrace verify`
must refuse a store into which such an event was written directly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import cluster
from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from ledger.tx import Transaction
from ledger.verify import verify_store
from nodes.config import BlockConfig
from nodes.devchain import DevChain
from tests.chains import object_event, write_behind_the_nodes_back
from tests.localnet import FAST
from tests.test_block_rules import event, sign
from traceability.validity import trace_rules

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: Heights at which the faulty validator must have had its invalid block refused.
REFUSED_HEIGHTS = 4  # one led by each planted transaction


def invalid_events(consortium: Consortium) -> list[Transaction]:
    """Signed by a producer the policy lets record commissioning and issue codes: only the
    domain rules (the EPCIS schema, the exact payload of a code issuance) have anything
    against them."""
    untimed = event("byzantine: no eventTime")
    del untimed["eventTime"]
    return [
        consortium.sign_tx(
            "gannan-orchard-coop",
            "epcis.event",
            {"event": event("byzantine: FooEvent", type="FooEvent")},
        ),
        consortium.sign_tx("gannan-orchard-coop", "epcis.event", {"event": untimed}),
        # The payload that once halted every validator after the block was decided.
        consortium.sign_tx("gannan-orchard-coop", "codes.issue", {"event": {"epcList": 5}}),
        # A well-formed harvest of a GI product from no registered plot: the trust rules'.
        consortium.sign_tx("wenshan-growers", "epcis.event", {"event": unregistered_harvest()}),
    ]


def unregistered_harvest() -> dict[str, Any]:
    roots = "https://id.gs1.org/01/06904567000166/10/BYZ-1"
    return object_event(
        "byzantine: roots from nowhere",
        action="ADD",
        bizStep="commissioning",
        quantityList=[{"epcClass": roots, "quantity": 500, "uom": "KGM"}],
        readPoint={"id": "urn:epc:id:sgln:0690456.00999.0"},
    )


@dataclass
class ByzantineCluster:
    directory: Path
    consortium: Consortium
    honest: list[cluster.Member]
    faulty: cluster.Member
    planted: list[Transaction]
    record: Path

    def votes_and_proposals(self) -> list[dict[str, Any]]:
        text = self.record.read_text(encoding="utf-8") if self.record.exists() else ""
        return [json.loads(line) for line in _complete_lines(text)]

    def bad_proposals(self) -> list[dict[str, Any]]:
        planted = {tx.id for tx in self.planted}
        return [
            entry
            for entry in self.votes_and_proposals()
            if entry["kind"] == "proposal" and planted & set(entry["txs"])
        ]


def start_faulty(directory: Path, member: cluster.Member, planted: Path, record: Path) -> None:
    """Like `cluster.start`, with the faulty entry point (so `cluster.stop` and
    `cluster.pid_of` serve it as any node)."""
    config = (directory / member.id / "node.toml").resolve()
    faulty = ("-m", "tests.byzantine_node", str(config), str(planted), str(record))
    cluster.start(directory, member.id, {"PYTHONPATH": str(ROOT)}, command=faulty)


@pytest.fixture
def byzantine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ByzantineCluster]:
    directory = tmp_path_factory.mktemp("byzantine")
    ports = cluster.free_ports(16)  # one free range: peer ports and API ports cannot overlap
    members = cluster.create(
        directory,
        nodes=4,
        p2p_port=ports,
        api_port=ports + 8,
        blocks=BlockConfig(max_txs=100, batch_ms=50, idle_ms=500),
        consensus=FAST,
    )
    consortium = Consortium.load(directory / "consortium")
    faulty, honest = members[0], members[1:]
    planted = invalid_events(consortium)
    planted_file = directory / "planted.json"
    planted_file.write_text(json.dumps([tx.to_json() for tx in planted]), encoding="utf-8")
    world = ByzantineCluster(
        directory, consortium, honest, faulty, planted, directory / "faulty-record.jsonl"
    )
    try:
        for member in honest:
            cluster.start(directory, member.id)
        start_faulty(directory, faulty, planted_file, world.record)
        missing = cluster.wait_ready(directory, members, 90)
        assert not missing, f"never ready: {missing}"
        yield world
    finally:
        for member in members:
            cluster.stop(directory, member.id)


def _complete_lines(text: str) -> list[str]:
    """The lines a running process has finished writing (the last may be half written)."""
    return [line for line in text.split("\n")[:-1] if line.strip()]


def _log_messages(path: Path) -> list[str]:
    """The messages of a node's JSON log (one object a line)."""
    lines = _complete_lines(path.read_text(encoding="utf-8"))
    return [json.loads(line)["message"] for line in lines if line.startswith("{")]


def _heights(http: httpx.Client, members: list[cluster.Member]) -> list[int]:
    return [http.get(f"{m.url}/healthz").json()["height"] for m in members]


def _states(http: httpx.Client, member: cluster.Member, ids: list[str]) -> dict[str, str]:
    response = http.post(f"{member.url}/v1/transactions/status", json={"ids": ids})
    assert response.status_code == 200, response.text
    return {item["id"]: item["state"] for item in response.json()["statuses"]}


def test_honest_validators_refuse_the_byzantine_proposals_and_go_on(
    byzantine: ByzantineCluster,
) -> None:
    world = byzantine
    everyone = [world.faulty, *world.honest]
    bad_ids = [tx.id for tx in world.planted]
    # Good work, one transaction through the faulty node (which gossips it) and one
    # through an honest one: both must commit although the faulty node keeps proposing.
    good = [sample_event_tx(world.consortium, 0), sample_event_tx(world.consortium, 1)]
    with httpx.Client(timeout=30) as http:
        for tx, member in zip(good, [world.faulty, world.honest[0]], strict=True):
            response = http.post(f"{member.url}/v1/transactions", json=tx.to_json())
            assert response.status_code == 202, response.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            refused_at = {p["height"] for p in world.bad_proposals()}
            passed = min(_heights(http, world.honest))
            committed = all(
                set(_states(http, m, [tx.id for tx in good]).values()) == {"committed"}
                for m in world.honest
            )
            if committed and len({h for h in refused_at if h <= passed}) >= REFUSED_HEIGHTS:
                break
            assert all(cluster.pid_of(world.directory, m.id) for m in everyone), "a node exited"
            for member in everyone:  # at no moment does any node call them committed
                assert "committed" not in _states(http, member, bad_ids).values(), member.id
            time.sleep(0.5)
        proposals = world.bad_proposals()
        passed = min(_heights(http, world.honest))
        decided = {p["height"] for p in proposals if p["height"] <= passed}
        assert len(decided) >= REFUSED_HEIGHTS, (proposals, passed)

        # Never committed, nowhere: the status of every node says so.
        for member in everyone:
            states = _states(http, member, bad_ids)
            assert "committed" not in states.values(), (member.id, states)
            goods = _states(http, member, [tx.id for tx in good])
            assert set(goods.values()) == {"committed"}, (member.id, goods)

        # The cluster goes on committing after the refusals.
        before = _heights(http, world.honest)
        time.sleep(2)
        assert all(h > b for h, b in zip(_heights(http, world.honest), before, strict=True))

    # What the honest validators signed about each invalid proposal: nil, every time.
    honest_ids = {m.id for m in world.honest}
    record = world.votes_and_proposals()
    bad_hashes = {p["block_hash"] for p in proposals}
    honest_votes = [v for v in record if v["kind"] != "proposal" and v["validator"] in honest_ids]
    assert not [v for v in honest_votes if v["block_hash"] in bad_hashes]
    fully_seen = 0
    for proposal in proposals:
        if proposal["height"] not in decided:
            continue
        prevotes = {
            v["validator"]: v["block_hash"]
            for v in honest_votes
            if v["kind"] == "prevote"
            and (v["height"], v["round"]) == (proposal["height"], proposal["round"])
        }
        assert set(prevotes.values()) <= {None}, (proposal, prevotes)
        fully_seen += set(prevotes) == honest_ids
    assert fully_seen >= 1, "no invalid proposal with all three honest prevotes (nil) recorded"

    # The honest nodes' logs name the faulty proposer and the rule each event broke.
    refusals = []
    for member in world.honest:
        theirs = [
            message
            for message in _log_messages(world.directory / member.id / "node.log")
            if message.startswith("block ")
            and f"proposed by {world.faulty.id} is invalid" in message
        ]
        assert theirs, f"{member.id} logged no refusal"
        refusals += theirs
    assert any("'FooEvent' is not an EPCIS 2.0 event type" in m for m in refusals), refusals
    assert any('"eventTime" is a required property' in m for m in refusals), refusals
    assert any("payload.event: unknown field" in m for m in refusals), refusals
    assert any("origin rule: a harvest of notoginseng-root-fresh" in m for m in refusals)
    assert all(cluster.pid_of(world.directory, m.id) is not None for m in everyone)

    # Every store (the faulty node's too: it follows what the quorum decides) lacks the
    # events, holds another block at each refused height, and verifies.
    refused = {p["height"]: p["block_hash"] for p in proposals if p["height"] in decided}
    for member in everyone:
        cluster.stop(world.directory, member.id)  # a store is read whole when its node is down
    for member in everyone:
        store = Store(f"sqlite:///{world.directory / member.id / 'node.db'}", migrate=False)
        try:
            assert store.height() >= max(refused)
            assert not store.known_tx_ids([tx.id for tx in world.planted]), member.id
            for height, block_hash in refused.items():
                header = store.header(height)
                assert header is not None and header.hash != block_hash, (member.id, height)
            report = verify_store(store, world.consortium.genesis, rules=trace_rules)
            assert report.ok, (member.id, report.problem)
        finally:
            store.close()


def _verify_cli(db: Path, genesis: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "verify", "--db", str(db), "--genesis", str(genesis)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "event_type",
    [
        "FooEvent",
        "[/x] [bold]Rich markup[/bold] from the payload",  # once a crash, or text lost
    ],
)
def test_verify_cli_names_the_block_and_the_rule_of_a_written_invalid_event(
    park: Consortium, tmp_path: Path, event_type: str
) -> None:
    db = tmp_path / "node.db"
    chain = DevChain(park.genesis, park.validator_keys, Store(f"sqlite:///{db}"))
    assert chain.store is not None
    chain.commit_block([sign(park, chain, "epcis.event", {"event": event("first")})])
    bad = sign(park, chain, "epcis.event", {"event": event("written", type=event_type)})
    write_behind_the_nodes_back(chain, [bad])
    chain.store.close()
    genesis = tmp_path / "genesis.json"
    park.genesis.write(genesis)
    result = _verify_cli(db, genesis)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, however long
    assert lines[0].startswith(f"FAILED at height 2: transaction 0 ({bad.id[:16]}")
    assert f"payload.event.type: {event_type!r} is not an EPCIS 2.0 event type" in lines[0]
