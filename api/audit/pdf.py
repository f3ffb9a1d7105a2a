"""A PDF of a signed audit report, for people and for the file: what was checked, the
head it covers, the result, who signed, and the SHA-256 of the signed JSON so the paper
copy can be matched to the JSON that `parktrace audit report verify` checks. The JSON is
the authoritative record; the PDF only shows it.

Drawn with fpdf2's core fonts (no font files to ship); text outside Latin-1 (Chinese
names) is transliterated to '?', which is why organisations appear by their ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fpdf import FPDF

from ledger import codec


def _latin1(text: Any) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


def render_pdf(signed: dict[str, Any]) -> bytes:
    report, signature = signed["report"], signed["signature"]
    digest = hashlib.sha256(codec.canonical(signed)).hexdigest()
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_title("ParkTrace audit report")
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "ParkTrace audit report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    verdict = "PASS" if report.get("ok") else "FAIL"
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, _latin1(f"Result: {verdict} - {report.get('result')}"))
    pdf.ln(2)
    head = report.get("head") or {}
    checks = report.get("checks") or {}
    auditor = report.get("auditor") or {}
    rows = [
        ("Chain", report.get("chain_id")),
        ("Genesis hash", report.get("genesis_hash")),
        ("Node", report.get("node") or "single-process node"),
        ("Head height", head.get("height")),
        ("Head block hash", head.get("hash")),
        ("Head block time", head.get("time")),
        ("Ledger log size", head.get("log_size")),
        ("Ledger log root", head.get("log_root")),
        ("Blocks checked", checks.get("blocks")),
        ("Transactions checked", checks.get("transactions")),
        ("Signatures checked", checks.get("signatures")),
        ("Time taken", f"{checks.get('milliseconds')} ms"),
        ("Genesis used", checks.get("genesis")),
        ("Drafted at", report.get("drafted_at")),
        ("Signed at", report.get("signed_at")),
        ("Signed by", f"{auditor.get('name')}@{auditor.get('organization')}"),
        ("Signer certificate", signature.get("signer")),
        ("SHA-256 of the signed JSON", digest),
    ]
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(55, 6, _latin1(label))
        pdf.set_font("Courier", "", 8)
        pdf.multi_cell(0, 6, _latin1("-" if value is None else value), new_x="LMARGIN")
    problem = report.get("problem")
    if problem:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(0, 6, _latin1(f"First problem, at height {problem.get('height')}:"))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6, _latin1(problem.get("what")))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "What was checked", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for item in checks.get("what") or []:
        pdf.multi_cell(0, 5, _latin1(f"- {item}"), new_x="LMARGIN")
    pdf.ln(3)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(
        0,
        5,
        "Verify the signed JSON with: parktrace audit report verify REPORT.json "
        "--genesis genesis.json",
    )
    return bytes(pdf.output())
