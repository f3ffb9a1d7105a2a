"""The PDF of a signed audit report, for people and for the file: in Chinese (or English
on request), set in an embedded CJK font (api.audit.fonts), with the report number, the
scope (the nodes compared), the findings, the verification figures, who signed, and a QR
code of the report's number and digest. The signed JSON is embedded in the PDF as an
attachment (`audit-report.json`), and api.audit.sealed seals the whole file with the
regulator's key, so that `parktrace report verify REPORT.pdf` checks it offline.
"""

from __future__ import annotations

import hashlib
from typing import Any

import qrcode
from fpdf import FPDF

from ledger import codec

from .fonts import FAMILY, cjk_fonts

ATTACHMENT = "audit-report.json"
LANGUAGES = ("zh", "en")

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "ParkTrace 区块链审计报告",
        "number": "报告编号",
        "pass": "通过",
        "fail": "未通过",
        "verdict": "审计结论",
        "intact": "账本完整：已逐一验证 {blocks} 个区块、{transactions} 笔交易和 {signatures} "
        "个签名，至区块高度 {height}。",
        "failed": "验证失败：区块高度 {height} 处发现问题：{what}",
        "scope": "审计范围",
        "chain": "链标识",
        "genesis": "创世文件哈希",
        "genesis_used": "所用创世文件",
        "nodes": "比对节点",
        "node": "出具节点",
        "compared": "节点间比对",
        "agree": "各节点区块一致（比对至高度 {height}）",
        "differ": "节点区块不一致：{nodes}（首个分歧高度 {height}）",
        "not_compared": "未进行跨节点比对（本节点未配置其他节点）",
        "unreachable": "无法连接的节点",
        "head": "链头区块",
        "head_height": "链头高度",
        "head_hash": "链头区块哈希",
        "head_time": "链头区块时间",
        "log": "账本日志（大小 / Merkle 根）",
        "findings": "审计发现",
        "no_findings": "未发现问题。",
        "figures": "验证数据",
        "blocks": "已验证区块",
        "transactions": "已验证交易（事件）",
        "signatures": "已验证签名",
        "time": "验证用时",
        "rate": "验证速率",
        "per_second": "笔/秒",
        "checked": "检查内容",
        "signing": "签发",
        "auditor": "审计人",
        "signer": "签名证书指纹",
        "drafted": "起草时间",
        "signed": "签发时间",
        "digest": "签名报告 JSON 的 SHA-256",
        "verify": "离线核验：parktrace report verify 本文件.pdf --genesis genesis.json"
        "（扫描二维码可得报告编号与摘要）",
        "height": "高度",
        "colon": "：",
    },
    "en": {
        "title": "ParkTrace audit report",
        "number": "Report number",
        "pass": "PASS",
        "fail": "FAIL",
        "verdict": "Result",
        "intact": "Ledger intact: {blocks} blocks, {transactions} transactions and "
        "{signatures} signatures verified up to height {height}.",
        "failed": "Verification FAILED at height {height}: {what}",
        "scope": "Scope",
        "chain": "Chain",
        "genesis": "Genesis hash",
        "genesis_used": "Genesis used",
        "nodes": "Nodes compared",
        "node": "Reporting node",
        "compared": "Cross-node comparison",
        "agree": "all nodes hold the same blocks (compared up to height {height})",
        "differ": "nodes differ: {nodes} (first divergence at height {height})",
        "not_compared": "not compared (this node has no other nodes configured)",
        "unreachable": "Unreachable nodes",
        "head": "Head block",
        "head_height": "Head height",
        "head_hash": "Head block hash",
        "head_time": "Head block time",
        "log": "Ledger log (size / Merkle root)",
        "findings": "Findings",
        "no_findings": "No problem found.",
        "figures": "Verification figures",
        "blocks": "Blocks verified",
        "transactions": "Transactions (events) verified",
        "signatures": "Signatures verified",
        "time": "Time taken",
        "rate": "Rate",
        "per_second": "tx/s",
        "checked": "What was checked",
        "signing": "Signed",
        "auditor": "Auditor",
        "signer": "Signer certificate",
        "drafted": "Drafted at",
        "signed": "Signed at",
        "digest": "SHA-256 of the signed JSON",
        "verify": "Verify offline: parktrace report verify THIS.pdf --genesis genesis.json "
        "(the QR code holds the report number and digest)",
        "height": "height",
        "colon": ": ",
    },
}

#: The checks the node lists (api.audit.verification), as the Chinese report names them.
_CHECKS_ZH = {
    "every stored byte is canonical and agrees with its derived columns": (
        "每个存储字节均为规范编码，且与其派生列一致"
    ),
    "every block header links to the previous one and commits to its transactions": (
        "每个区块头都链接到前一区块，并承诺其全部交易"
    ),
    "every commit certificate holds a quorum of valid validator signatures": (
        "每个提交证书都含有法定数量的有效验证节点签名"
    ),
    "every transaction signature, signer certificate and write-policy permission": (
        "每笔交易的签名、签名者证书及写入策略权限"
    ),
    "the recall rule and every other transaction rule, replayed from genesis": (
        "召回规则及其他全部交易规则（自创世起重放）"
    ),
    "the whole-ledger Merkle log and the product index": "全账本 Merkle 日志及产品索引",
}


def verification_urn(signed: dict[str, Any]) -> str:
    """What the QR code holds: the report number and the digest of the signed JSON."""
    number = signed["report"].get("number") or "-"
    return f"urn:parktrace:audit-report:{number}:sha256:{report_digest(signed)}"


def report_digest(signed: dict[str, Any]) -> str:
    return hashlib.sha256(codec.canonical(signed)).hexdigest()


def findings(report: dict[str, Any], lang: str) -> list[str]:
    t = _TEXT[lang]
    out = []
    problem = report.get("problem")
    if problem:
        out.append(f"{t['height']} {problem.get('height')}: {problem.get('what')}")
    scope = report.get("scope") or {}
    comparison = scope.get("comparison") or {}
    for d in comparison.get("divergences") or []:
        out.append(
            f"{t['height']} {d.get('height')}: "
            + t["differ"].format(nodes=", ".join(d.get("diverging") or []), height=d.get("height"))
        )
    for node in comparison.get("unreachable") or []:
        out.append(f"{t['unreachable']}: {node}")
    return out


def _text_of(signed: dict[str, Any], lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The report's sections: (heading, [(label, value)])."""
    t = _TEXT[lang]
    report, signature = signed["report"], signed["signature"]
    head, checks = report.get("head") or {}, report.get("checks") or {}
    auditor, scope = report.get("auditor") or {}, report.get("scope") or {}
    comparison = scope.get("comparison")
    if comparison is None:
        compared = t["not_compared"]
    elif comparison.get("ok"):
        compared = t["agree"].format(height=comparison.get("compared_up_to"))
    else:
        compared = t["differ"].format(
            nodes=", ".join(comparison.get("diverging_nodes") or []),
            height=comparison.get("first_divergence"),
        )
    seconds = (checks.get("milliseconds") or 0) / 1000
    rate = (
        f"{(checks.get('transactions') or 0) / seconds:,.0f} {t['per_second']}" if seconds else "-"
    )
    what = checks.get("what") or []
    return [
        (
            t["scope"],
            [
                (t["chain"], report.get("chain_id")),
                (t["genesis"], report.get("genesis_hash")),
                (t["genesis_used"], checks.get("genesis")),
                (t["node"], report.get("node") or "dev"),
                (t["nodes"], ", ".join(scope.get("nodes") or [report.get("node") or "dev"])),
                (t["compared"], compared),
                (t["head_height"], head.get("height")),
                (t["head_hash"], head.get("hash")),
                (t["head_time"], head.get("time")),
                (t["log"], f"{head.get('log_size')} / {head.get('log_root')}"),
            ],
        ),
        (t["findings"], [("•", f) for f in findings(report, lang)] or [("", t["no_findings"])]),
        (
            t["figures"],
            [
                (t["blocks"], f"{checks.get('blocks') or 0:,}"),
                (t["transactions"], f"{checks.get('transactions') or 0:,}"),
                (t["signatures"], f"{checks.get('signatures') or 0:,}"),
                (t["time"], f"{seconds:,.2f} s"),
                (t["rate"], rate),
            ],
        ),
        (
            t["checked"],
            [("•", _CHECKS_ZH.get(w, w) if lang == "zh" else w) for w in what],
        ),
        (
            t["signing"],
            [
                (t["auditor"], f"{auditor.get('name')}@{auditor.get('organization')}"),
                (t["signer"], signature.get("signer")),
                (t["drafted"], report.get("drafted_at")),
                (t["signed"], report.get("signed_at")),
                (t["digest"], report_digest(signed)),
            ],
        ),
    ]


def _verdict(report: dict[str, Any], lang: str) -> str:
    t = _TEXT[lang]
    checks, problem = report.get("checks") or {}, report.get("problem")
    if problem:
        return t["failed"].format(height=problem.get("height"), what=problem.get("what"))
    said = t["intact"].format(
        blocks=f"{checks.get('blocks') or 0:,}",
        transactions=f"{checks.get('transactions') or 0:,}",
        signatures=f"{checks.get('signatures') or 0:,}",
        height=(report.get("head") or {}).get("height"),
    )
    comparison = (report.get("scope") or {}).get("comparison") or {}
    if comparison and not comparison.get("ok"):
        said += " " + t["differ"].format(
            nodes=", ".join(comparison.get("diverging_nodes") or []),
            height=comparison.get("first_divergence"),
        )
    return said


def render_pdf(signed: dict[str, Any], lang: str = "zh") -> bytes:
    """The report as PDF (not yet sealed: api.audit.sealed.seal_pdf does that)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    t = _TEXT[lang]
    report = signed["report"]
    sections = _text_of(signed, lang)
    verdict = _verdict(report, lang)
    number = str(report.get("number") or "-")
    everything = " ".join(
        [t["title"], t["number"], number, t["verdict"], t["pass"], t["fail"], verdict, t["verify"]]
        + [f"{h} {a} {b}" for h, rows in sections for a, b in rows]
    )
    with cjk_fonts(everything) as fonts:
        pdf = FPDF(format="A4")
        for style, path in fonts.items():
            pdf.add_font(FAMILY, style, str(path))
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.set_title(f"{t['title']} {number}")
        pdf.set_lang("zh-CN" if lang == "zh" else "en")
        pdf.add_page()
        _header(pdf, t, number, signed)
        ok = bool(report.get("ok"))
        pdf.set_fill_color(*((225, 245, 230) if ok else (250, 225, 225)))
        pdf.set_font(FAMILY, "B", 12)
        pdf.multi_cell(
            0,
            8,
            f"{t['verdict']}{t['colon']}{t['pass'] if ok else t['fail']}",
            fill=True,
            new_x="LMARGIN",
        )
        pdf.set_font(FAMILY, "", 10)
        pdf.multi_cell(0, 6, verdict, fill=True, new_x="LMARGIN", new_y="NEXT")
        for heading, rows in sections:
            pdf.ln(3)
            pdf.set_font(FAMILY, "B", 12)
            pdf.cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
            for label, value in rows:
                _row(pdf, label, value)
        pdf.ln(4)
        pdf.set_font(FAMILY, "", 8)
        pdf.multi_cell(0, 5, t["verify"], new_x="LMARGIN", new_y="NEXT")
        pdf.embed_file(
            bytes=codec.canonical(signed), basename=ATTACHMENT, mime_type="application/json"
        )
        return bytes(pdf.output())


def _header(pdf: FPDF, t: dict[str, str], number: str, signed: dict[str, Any]) -> None:
    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(verification_urn(signed))
    image = qr.make_image().get_image()
    pdf.image(image, x=pdf.w - pdf.r_margin - 32, y=pdf.t_margin, w=32, h=32)
    pdf.set_font(FAMILY, "B", 18)
    pdf.cell(pdf.epw - 36, 11, t["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 11)
    pdf.cell(pdf.epw - 36, 7, f"{t['number']}{t['colon']}{number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), pdf.t_margin + 34))


def _row(pdf: FPDF, label: str, value: Any) -> None:
    text = "-" if value is None else str(value)
    if label in ("", "•"):
        pdf.set_font(FAMILY, "", 9)
        pdf.multi_cell(0, 5.5, f"{label} {text}".strip(), new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font(FAMILY, "B", 9)
    pdf.cell(50, 5.5, label)
    pdf.set_font(FAMILY, "", 9)
    pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
