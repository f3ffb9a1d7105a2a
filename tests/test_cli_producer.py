"""The producer CLI against a real `parktrace serve --solo` process on a loopback port:
bulk import of 10,000 CSV rows, a receipt fetched over HTTP and verified offline, and
one-line errors for everything a user can get wrong."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devtools.cluster import free_ports
from ledger.consortium import Consortium
from ledger.genesis import Genesis
from tests.localnet import end_process
from tests.testdata import EPCIS_EXAMPLES
from traceability.epcis.document import parse_json
from traceability.receipts import ReceiptError, verify_receipt

MASKS = "ganzhou-mask-factory"
NAMESPACE = "ex=https://ns.parktrace.example/ex/"


@dataclass(frozen=True)
class Server:
    url: str
    consortium: Path

    @property
    def genesis(self) -> Path:
        return self.consortium / "genesis.json"


def parktrace(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli")
    Consortium.sample(seed=b"cli tests").write(root / "consortium")
    port = free_ports(0)
    command = [
        sys.executable, "-m", "cli", "serve", "--solo",
        "--consortium", str(root / "consortium"), "--db", str(root / "node.db"),
        "--port", str(port), "--block-interval", "0.05",
    ]  # fmt: skip
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited: {(root / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/v1/chain", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready: {(root / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield Server(url, root / "consortium")
    finally:
        end_process(process, 10)
        log.close()


#: The identity options of me(), for parametrised commands ({park}: the consortium folder).
SIGNED = ["--consortium", "{park}", "--org", MASKS]


def me(server: Server, org: str = MASKS) -> list[str]:
    return ["--url", server.url, "--consortium", str(server.consortium), "--org", org]


def write_csv(path: Path, rows: int, start: int = 0) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["eventTime", "action", "bizStep", "disposition", "readPoint", "epcList",
                      "ex:batch"])  # fmt: skip
        for i in range(start, start + rows):
            out.writerow([
                f"2026-11-20T{8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d}+08:00",
                "ADD", "commissioning", "active", "urn:epc:id:sgln:0690789.00001.0",
                f"urn:epc:id:sgtin:0690789.000003.{i}", f"B{i // 1000}",
            ])  # fmt: skip


def test_bulk_import_of_10000_csv_rows(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "masks.csv"
    write_csv(source, 10_000)
    result = parktrace("import", str(source), *me(server), "-n", NAMESPACE, "--wait", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10000 events, 10000 accepted, 0 refused; 10000 committed" in result.stdout
    found = parktrace("events", *me(server), "--epc",
                      "urn:epc:id:sgtin:0690789.000003.4321", "--json")  # fmt: skip
    assert found.returncode == 0, found.stderr
    events = json.loads(found.stdout)
    assert len(events) == 1 and events[0]["ex:batch"] == "B4"


def test_import_reports_why_rows_were_refused(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "mixed.csv"
    write_csv(source, 3, start=50_000)
    with source.open("a", newline="") as f:
        out = csv.writer(f)
        out.writerow(["2026-11-20T08:00:00", "ADD", "commissioning", "", "", "urn:epc:id:x:1", ""])
        out.writerow(["2026-11-20T08:00:00Z", "ADD", "inspecting", "", "", "urn:epc:id:x:2", ""])
    result = parktrace("import", str(source), *me(server), "-n", NAMESPACE, "--wait", "20")
    assert result.returncode == 1
    assert "5 events, 3 accepted, 2 refused; 3 committed" in result.stdout
    assert "invalid_epcis" in result.stdout and "line 5" in result.stdout
    assert "not_permitted" in result.stdout and "line 6" in result.stdout
    again = parktrace("import", str(source), *me(server), "-n", NAMESPACE, "--json")
    assert again.returncode == 1
    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["refused"]) == (0, 5)
    assert {r["error"]: r["count"] for r in summary["reasons"]}["duplicate"] == 3


def test_import_of_an_epcis_document(server: Server, tmp_path: Path) -> None:
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": f"2026-11-21T10:0{i}:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "epcList": [f"urn:epc:id:sgtin:0690789.000003.{70_000 + i}"],
            "action": "ADD",
            "bizStep": "commissioning",
        }
        for i in range(3)
    ]
    doc = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-21T10:00:00+08:00",
        "epcisBody": {"eventList": events},
    }
    (tmp_path / "doc.jsonld").write_text(json.dumps(doc))
    result = parktrace("import", str(tmp_path / "doc.jsonld"), *me(server), "--wait", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 events, 3 accepted, 0 refused; 3 committed" in result.stdout


def test_receipt_over_http_verifies_offline(server: Server, tmp_path: Path) -> None:
    event = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "ObjectEvent",
        "eventTime": "2026-11-21T09:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["urn:epc:id:sgtin:0690789.000003.900001"],
        "action": "ADD",
        "bizStep": "commissioning",
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    receipt = tmp_path / "receipt.json"
    submitted = parktrace("submit", str(tmp_path / "event.json"), *me(server),
                          "--wait", "20", "--receipt", str(receipt))  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    tx_id = submitted.stdout.split()[0]
    assert "committed at height" in submitted.stdout

    verified = parktrace("receipt", "verify", str(receipt), "--genesis", str(server.genesis))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"OK transaction {tx_id}")
    fetched = tmp_path / "again.json"
    got = parktrace("receipt", "get", tx_id, "--url", server.url, "-o", str(fetched))
    assert got.returncode == 0 and fetched.read_bytes() == receipt.read_bytes()

    # Any byte changed, anywhere: verification fails.
    raw, genesis = receipt.read_bytes(), Genesis.load(server.genesis)
    verify_receipt(parse_json(raw, unique_keys=True), genesis)
    for i in range(len(raw)):
        tampered = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        with pytest.raises((ReceiptError, ValueError)):
            verify_receipt(parse_json(tampered, unique_keys=True), genesis)
    middle = len(raw) // 2
    receipt.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0x01]) + raw[middle + 1 :])
    refused = parktrace("receipt", "verify", str(receipt), "--genesis", str(server.genesis))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1


def test_capture_and_query_through_the_cli(server: Server, tmp_path: Path) -> None:
    doc = EPCIS_EXAMPLES / "Example_9.6.3-AggregationEvent.jsonld"
    data = json.loads(doc.read_text())
    data["epcisBody"]["eventList"][0]["bizStep"] = "packing"  # a step the factory may record
    (tmp_path / "doc.jsonld").write_text(json.dumps(data))
    captured = parktrace("capture", str(tmp_path / "doc.jsonld"), *me(server), "--wait", "20")
    assert captured.returncode == 0, captured.stdout + captured.stderr
    assert "1 events, 1 accepted, 0 refused; 1 committed" in captured.stdout
    again = parktrace("capture", str(tmp_path / "doc.jsonld"), *me(server))
    assert again.returncode == 1 and "duplicate" in again.stdout
    parent = data["epcisBody"]["eventList"][0]["parentID"]
    history = parktrace("history", parent, "--url", server.url, "--json")
    assert history.returncode == 0 and json.loads(history.stdout)["events"][0]["relation"] == "self"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["import", "/nonexistent.csv", "--url", "http://127.0.0.1:9"], "cannot read"),
        (["events", "--url", "{url}"], "signing needs your identity"),
        (["events", "--url", "http://127.0.0.1:9", *SIGNED], "cannot reach"),
        (["events", "--url", "{url}", *SIGNED, "-p", "EQ_bizstep=shipping"], "invalid_request"),
        (["submit", "{tmp}/payload.json", "--url", "{url}"], "signing needs your identity"),
        (["submit", "{tmp}/payload.json", "--key", "{tmp}/payload.json", "--cert",
          "{tmp}/payload.json"], "cannot load private key"),
        (["capture", "{tmp}/payload.json", "--url", "{url}"], "expected 'EPCISDocument'"),
        (["receipt", "verify", "{tmp}/payload.json", "--genesis", "/nonexistent"], "cannot read"),
        (["receipt", "verify", "{tmp}/payload.json", "--genesis", "{genesis}"], "fields must be"),
        (["import", "{tmp}/payload.json", "-n", "nonsense"], "expected PREFIX=URI"),
        (["serve", "--consortium", "{tmp}"], "only --solo"),
        (["serve", "--solo", "--consortium", "{tmp}"], "not found"),
    ],
)  # fmt: skip
def test_errors_are_one_line(server: Server, tmp_path: Path, args: list[str], words: str) -> None:
    """In-process (the same code paths as the console script, without a process each)."""
    from typer.testing import CliRunner

    from cli.main import app

    (tmp_path / "payload.json").write_text("{}")
    filled = [
        a.format(url=server.url, tmp=tmp_path, genesis=server.genesis, park=server.consortium)
        for a in args
    ]
    result = CliRunner().invoke(app, filled, env={"COLUMNS": "300"})
    assert result.exit_code in (1, 2), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_import_refuses_a_row_with_a_wrong_gtin_check_digit(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "digits.csv"
    with source.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["eventTime", "action", "bizStep", "epcList"])
        for gtin in ("06907890000346", "06907890000347"):  # the second ends in a wrong digit
            out.writerow(["2026-11-20T08:00:00+08:00", "ADD", "commissioning",
                          f"https://id.gs1.org/01/{gtin}/21/CD{gtin[-1]}"])  # fmt: skip
    result = parktrace("import", str(source), *me(server), "--wait", "20")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 events, 1 accepted, 1 refused; 1 committed" in result.stdout
    assert "line 3" in result.stdout and "gtin-check-digit" in result.stdout
