"""The seal of a report's PDF: the regulator signs the SHA-256 of the PDF's bytes (with
the report's number and the digest of the signed JSON inside it), and the seal is kept
in a comment line after the PDF's end (`%PARKTRACE-SEAL <base64>`), where PDF readers
ignore it. Any changed byte of the file, the seal included, fails `verify_pdf`, which
needs only the genesis: the certificate that sealed it must be the one that signed the
embedded report, issued by the consortium's CA, a regulator's, and valid when sealed.

The seal covers the RFC 8785 bytes of its body in the "report" domain, typed
`parktrace.audit_report_pdf`, so it can pass neither for a report nor for anything else.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

from ledger import codec
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.identity import Credential
from sdk.signing import Identity

from .pdf import ATTACHMENT, report_digest
from .report import DOMAIN, ReportCheck, ReportError, verify_report

SEAL_TYPE = "parktrace.audit_report_pdf"
MARK = b"\n%PARKTRACE-SEAL "


def seal_pdf(pdf: bytes, signed: dict[str, Any], identity: Identity) -> bytes:
    """`pdf` (rendered from `signed`) with the seal of `identity`, who signed `signed`."""
    cred = identity.credential
    if cred is None or cred.fingerprint != signed["signature"]["signer"]:
        raise ReportError("the PDF is sealed by the key that signed the report")
    body = {
        "type": SEAL_TYPE,
        "number": signed["report"].get("number"),
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "report_sha256": report_digest(signed),
        "signer": cred.fingerprint,
    }
    value = identity.key.sign(codec.domain_bytes(DOMAIN, body))
    seal = {"seal": body, "scheme": identity.key.scheme, "value": codec.b64encode(value)}
    text = base64.b64encode(codec.canonical(seal))
    return pdf + MARK + text + b"\n"


def _split(data: bytes) -> tuple[bytes, dict[str, Any]]:
    at = data.rfind(MARK)
    if at < 0 or not data.endswith(b"\n"):
        raise ReportError("the file carries no ParkTrace seal (or its end was changed)")
    pdf, text = data[:at], data[at + len(MARK) : -1]
    try:
        raw = base64.b64decode(text, validate=True)
        seal = json.loads(raw)
    except ValueError as exc:
        raise ReportError("the seal is not readable: the file was changed") from exc
    if not isinstance(seal, dict) or codec.canonical(seal) != raw:
        raise ReportError("the seal is not in canonical form: the file was changed")
    if set(seal) != {"seal", "scheme", "value"} or not isinstance(seal["seal"], dict):
        raise ReportError("seal: fields must be seal, scheme, value")
    return pdf, seal


def _attachment(pdf: bytes) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        found = PdfReader(io.BytesIO(pdf)).attachments.get(ATTACHMENT)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ReportError(f"the PDF cannot be read: {exc}") from exc
    if not found:
        raise ReportError(f"the PDF holds no {ATTACHMENT}")
    try:
        return json.loads(found[0])
    except ValueError as exc:
        raise ReportError(f"{ATTACHMENT} in the PDF is not JSON") from exc


def verify_pdf(data: bytes, genesis: Genesis) -> tuple[ReportCheck, dict[str, Any]]:
    """Check a sealed report PDF offline; returns the embedded report's check and the
    signed report. ReportError says what fails."""
    pdf, seal = _split(data)
    body = seal["seal"]
    if body.get("type") != SEAL_TYPE:
        raise ReportError(f"seal: not a {SEAL_TYPE}")
    if body.get("pdf_sha256") != hashlib.sha256(pdf).hexdigest():
        raise ReportError("the PDF's bytes differ from the ones that were sealed")
    signed = _attachment(pdf)
    check = verify_report(signed, genesis)  # the certificate: CA, regulator, valid then
    if body.get("report_sha256") != report_digest(signed):
        raise ReportError("the embedded report differs from the one that was sealed")
    if body.get("number") != signed["report"].get("number"):
        raise ReportError("the seal names another report number")
    cred = Credential.from_pem(signed["signature"]["certificate"], "signature.certificate")
    if body.get("signer") != cred.fingerprint:
        raise ReportError("the PDF was sealed by another key than the report's signer")
    try:
        value = codec.b64decode(seal["value"], field="seal.value")
    except LedgerError as exc:
        raise ReportError(exc.message) from exc
    if seal["scheme"] != cred.public_key.scheme or not cred.public_key.verify(
        value, codec.domain_bytes(DOMAIN, body)
    ):
        raise ReportError("the seal does not verify with the signer's key: the file was changed")
    return check, signed
