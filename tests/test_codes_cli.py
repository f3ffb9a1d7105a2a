"""`parktrace codes`: issue writes PNG, SVG and a PDF label sheet for a batch recorded as
one transaction, with a progress bar; qr renders one code; keygen writes a resolver key."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

from cli import codes as cli_codes
from ledger.consortium import Consortium
from traceability.codes.sealing import ResolverKey

from .test_codes_api import Node, start


@pytest.fixture
def node(park: Consortium, tmp_path, monkeypatch) -> Iterator[Node]:
    for running in start(park, tmp_path):
        monkeypatch.setattr(cli_codes, "_session", _session_of(running))
        yield running


def _session_of(running: Node):
    @contextlib.contextmanager
    def session(url: str):
        yield running.client

    return session


@pytest.fixture(scope="module")
def consortium_dir(park: Consortium, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("consortium")
    park.write(path, force=True)
    return path


def run(*args: str):
    return CliRunner().invoke(cli_codes.app, list(args), env={"COLUMNS": "200"})


def test_issue_writes_images_and_a_label_sheet(node: Node, consortium_dir: Path, tmp_path) -> None:
    out = tmp_path / "labels"
    result = run(
        "issue",
        "--gtin", "6901234000290",
        "--lot", "GN26-1120-B",
        "--count", "45",
        "--attr", "7007=261118",
        "--attr", "422=156",
        "--name-zh", "赣南脐橙 5公斤礼盒",
        "--out", str(out),
        "--consortium", str(consortium_dir),
        "--org", "ganzhou-packing-house",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "45 codes derived" in result.output
    assert "recorded in block" in result.output
    assert "rendering" in result.output  # the progress bar
    assert "45 PNG, 45 SVG, 1 PDF" in result.output
    rows = list(csv.DictReader((out / "codes.csv").open(encoding="utf-8")))
    assert len(rows) == 45 and len({r["serial"] for r in rows}) == 45
    uri = rows[44]["uri"]
    assert uri.startswith("https://id.parktrace.example/01/06901234000290/10/GN26-1120-B/21/")
    assert uri.endswith("?422=156&7007=261118")
    png = out / "png" / "0000" / f"0000044-{rows[44]['serial']}.png"
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.read_bytes())))
    assert [f.text for f in found] == [uri]
    svg = (out / "svg" / "0000" / f"0000044-{rows[44]['serial']}.svg").read_text()
    assert svg.startswith("<svg")
    assert (out / "labels.pdf").read_bytes().startswith(b"%PDF-")
    batch = json.loads((out / "batch.json").read_text())
    assert batch["count"] == 45 and batch["height"] >= 1
    assert "key" not in json.dumps(batch).replace("keyCommitment", "").replace("resolverKeys", "")
    page = node.client.get(
        uri.split("id.parktrace.example", 1)[1], headers={"Accept-Language": "zh"}
    )
    assert "正品码" in page.text and "赣南脐橙 5公斤礼盒" in page.text


def test_issue_refuses_bad_input_with_one_line(node: Node, consortium_dir: Path, tmp_path) -> None:
    common = ["--out", str(tmp_path / "x"), "--consortium", str(consortium_dir)]
    bad_gtin = run(
        "issue", "--gtin", "6901234000291", "--lot", "L", "--count", "3", *common,
        "--org", "ganzhou-packing-house",
    )  # fmt: skip
    assert bad_gtin.exit_code == 2
    assert "wrong check digit in GTIN 6901234000291" in bad_gtin.output
    refused = run(
        "issue", "--gtin", "6901234000290", "--lot", "L", "--count", "3", *common,
        "--org", "retail-pharmacy-chain",
    )  # fmt: skip
    assert refused.exit_code == 2 and "not_permitted" in refused.output
    assert "Traceback" not in refused.output
    assert not (tmp_path / "x" / "codes.csv").exists()


def test_qr_and_keygen(tmp_path) -> None:
    out = tmp_path / "one.png"
    result = run("qr", "https://example.com/01/9521234543213/10/L1/21/S1", "--out", str(out))
    assert result.exit_code == 0, result.output
    found = zxingcpp.read_barcodes(Image.open(out))
    assert found[0].text == "https://example.com/01/09521234543213/10/L1/21/S1"
    bad = run("qr", "https://example.com/01/9521234543214", "--out", str(out))
    assert bad.exit_code == 2 and "check digit" in bad.output
    key = tmp_path / "resolver.key"
    assert run("keygen", "--out", str(key)).exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = run("keygen", "--out", str(key), "--force")
    assert ResolverKey.load(key).id in again.output
    assert run("keygen", "--out", str(key)).exit_code == 2
