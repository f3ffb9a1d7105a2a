"""The audit report's PDF (issue 21, must-show 4): in Chinese (English on request), in an
embedded CJK font from PyPI, with the report number, the scope (every node compared),
the findings, the figures and a QR code; the text read back from the PDF is the text
expected; rasterised by pdftoppm it is saved to test-artifacts/ to look at; and `parktrace
report verify` accepts the sealed file and refuses it with any one byte changed."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import text

from api.audit.pdf import render_pdf, verification_urn
from api.audit.report import ReportError, draft, sign
from api.audit.sealed import seal_pdf, verify_pdf
from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from ledger.verify import verify_store
from nodes.devchain import DevChain
from tests.conftest import FIXED_NOW
from tests.test_audit_api import identity
from traceability.audit import compare as comparing
from traceability.validity import trace_rules

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
NODES = ("node-1", "node-2", "node-3", "node-4")


def _head(store: Store) -> dict[str, Any]:
    h = store.header(store.height())
    assert h is not None
    return {
        "height": h.height,
        "hash": h.hash,
        "time": h.time,
        "log_size": h.log_size,
        "log_root": h.log_root,
    }


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Two signed reports of a four-node chain: all nodes agreeing, and node-3's store
    changed at height 4 (its block digest differs there)."""
    park = Consortium.sample(now=FIXED_NOW)
    tmp = tmp_path_factory.mktemp("report")
    store = Store(f"sqlite:///{tmp / 'node-1.db'}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    for height in range(6):
        chain.commit_block([sample_event_tx(park, height * 3 + i) for i in range(3)])
    store.close()
    for node in NODES[1:]:
        shutil.copy(tmp / "node-1.db", tmp / f"{node}.db")
    stores = {node: Store(f"sqlite:///{tmp / f'{node}.db'}") for node in NODES}
    regulator = identity(park, "market-supervision-bureau")
    reports: dict[str, dict[str, Any]] = {"park": {"genesis": park.genesis}}
    try:
        for case in ("agree", "differ"):
            if case == "differ":
                with stores["node-3"].engine.begin() as conn:
                    conn.execute(
                        text("update blocks set hash = :h where height = 4"), {"h": b"\x01" * 32}
                    )
            verification = verify_store(stores["node-1"], park.genesis, rules=trace_rules).to_json()
            verification |= {
                "node": "node-1",
                "checked": [
                    "every commit certificate holds a quorum of valid validator signatures",
                ],
            }
            sources = {n: comparing.LocalSource(s) for n, s in stores.items()}
            comparison = comparing.compare(sources).to_json()
            body = draft(verification, _head(stores["node-1"]), comparison)
            reports[case] = sign(body, regulator)
    finally:
        for s in stores.values():
            s.close()
    reports["park"]["identity"] = regulator
    return reports


def _sealed(signed: dict[str, Any], who: Any, lang: str = "zh") -> bytes:
    return seal_pdf(render_pdf(signed, lang), signed, who)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _screenshot(pdf: bytes, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    out = ARTIFACTS / name
    subprocess.run(
        ["pdftoppm", "-png", "-r", "120", "-singlefile", "-f", "1", str(source), str(out)],
        check=True,
        timeout=60,
    )
    png = out.with_suffix(".png")
    assert png.stat().st_size > 10_000
    return png


def test_the_chinese_report_reads_back_as_written(signed, tmp_path: Path) -> None:
    report = signed["agree"]
    pdf = _sealed(report, signed["park"]["identity"])
    words = _text(pdf)
    number = report["report"]["number"]
    assert number.startswith("PT-") and number in words
    for expected in (
        "ParkTrace 区块链审计报告",
        "报告编号",
        "审计结论：通过",
        "账本完整",
        "审计范围",
        "比对节点",
        "node-1, node-2, node-3, node-4",
        "各节点区块一致",
        "未发现问题",
        "已验证签名",
        "每个提交证书都含有法定数量的有效验证节点签名",
        "market-supervision-bureau",
    ):
        assert expected in words, expected
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in PdfReader(io.BytesIO(pdf)).pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert all("NotoSansSC" in f for f in fonts), fonts  # embedded, no system font
    png = _screenshot(pdf, "report-zh", tmp_path)
    codes = zxingcpp.read_barcodes(Image.open(png))
    assert [c.text for c in codes] == [verification_urn(report)]
    assert number in verification_urn(report)


def test_findings_name_the_node_and_height_that_differ(signed, tmp_path: Path) -> None:
    pdf = _sealed(signed["differ"], signed["park"]["identity"])
    words = _text(pdf)
    assert "审计结论：未通过" in words
    assert "节点区块不一致：node-3（首个分歧高度 4）" in words
    assert "高度 4: 节点区块不一致：node-3" in words
    _screenshot(pdf, "report-zh-differ", tmp_path)


def test_the_english_report_on_request(signed, tmp_path: Path) -> None:
    pdf = _sealed(signed["agree"], signed["park"]["identity"], "en")
    words = _text(pdf)
    for expected in ("ParkTrace audit report", "Report number", "Result: PASS", "No problem found"):
        assert expected in words, expected
    _screenshot(pdf, "report-en", tmp_path)


def test_report_verify_accepts_the_pdf_and_refuses_any_changed_byte(signed, tmp_path: Path) -> None:
    genesis = signed["park"]["genesis"]
    pdf = _sealed(signed["agree"], signed["park"]["identity"])
    check, embedded = verify_pdf(pdf, genesis)
    assert check.ok and embedded == signed["agree"]
    rng = random.Random(21)
    for at in [len(pdf) // 2, 100, len(pdf) - 40, *rng.sample(range(len(pdf)), 12)]:
        changed = bytearray(pdf)
        changed[at] ^= 0x01
        with pytest.raises(ReportError):
            verify_pdf(bytes(changed), genesis)

    path, genesis_file = tmp_path / "report.pdf", tmp_path / "genesis.json"
    path.write_bytes(pdf)
    genesis.write(genesis_file)
    ok = _cli("report", "verify", str(path), "--genesis", str(genesis_file))
    assert ok.returncode == 0, ok.stderr
    assert signed["agree"]["report"]["number"] in ok.stdout
    changed = bytearray(pdf)
    changed[len(pdf) // 3] ^= 0x20
    path.write_bytes(bytes(changed))
    bad = _cli("report", "verify", str(path), "--genesis", str(genesis_file))
    assert bad.returncode == 1 and "does NOT verify" in bad.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120
    )
