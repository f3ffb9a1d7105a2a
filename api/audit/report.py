"""The signed audit report: what was checked, the chain head it covers, and the result,
signed by the regulator with its own key, so anyone holding the genesis file can check
later who attested what.

The node drafts the body (`draft`: it runs the verification of its own store); the
regulator's machine adds who signs and when, signs it (`sign`) and keeps the JSON, plus a
PDF for people (api.audit.pdf). The signed object:

    {"report": {"type": "parktrace.audit_report", "version": 1, "chain_id", "genesis_hash",
                "node", "head": {height, hash, time, log_size, log_root},
                "checks": {…}, "scope": {nodes, comparison}, "ok": bool, "result": <sentence>,
                "problem": {height, what}|null,
                "drafted_at", "number", "signed_at", "auditor": {fingerprint, organization, name}},
     "signature": {"signer": <fingerprint>, "certificate": <PEM>, "scheme", "value"}}

The signature covers the RFC 8785 bytes of `report` in the "report" domain, so it can
never pass for a transaction or vote signature. `verify_report` needs only the genesis:
the certificate must be issued by the consortium's CA, hold the regulator role, be valid
when the report was signed, and its key must have made the signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger import codec
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.identity import Credential, check_issued_by, check_validity, load_certificate
from ledger.timefmt import now, parse_time
from sdk.signing import Identity

from .access import REGULATOR_ROLE

REPORT_TYPE = "parktrace.audit_report"
VERSION = 1
DOMAIN = "report"
SIGNED_FIELDS = ("report", "signature")
SIGNATURE_FIELDS = ("signer", "certificate", "scheme", "value")


class ReportError(LedgerError):
    """A report that does not verify; the message says which check failed."""

    code = "bad_report"


def draft(
    verification: dict[str, Any],
    head: dict[str, Any] | None,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The unsigned body from a node's verification report (api.audit.verification) and,
    when the node could compare its blocks with the other nodes', that comparison
    (traceability.audit.compare): the report's scope is every node compared."""
    problem = verification.get("problem")
    ok = bool(verification.get("ok"))
    height = verification.get("head_height", 0)
    result = (
        f"intact: {verification.get('blocks')} blocks, {verification.get('transactions')} "
        f"transactions and {verification.get('signatures')} signatures verified up to "
        f"height {height}"
        if ok
        else f"FAILED at height {problem['height']}: {problem['what']}"
    )
    return {
        "type": REPORT_TYPE,
        "version": VERSION,
        "chain_id": verification.get("chain_id"),
        "genesis_hash": verification.get("genesis_hash"),
        "node": verification.get("node"),
        "head": head,
        "checks": {
            "what": verification.get("checked", []),
            "genesis": verification.get("genesis_source"),
            "blocks": verification.get("blocks"),
            "transactions": verification.get("transactions"),
            "signatures": verification.get("signatures"),
            "milliseconds": round(float(verification.get("seconds") or 0) * 1000),
        },
        "scope": {
            "nodes": (comparison or {}).get("nodes") or [verification.get("node") or "dev"],
            "comparison": comparison,
        },
        "ok": ok and (comparison is None or bool(comparison.get("ok"))),
        "result": result
        + (
            ""
            if comparison is None or comparison.get("ok")
            else f"; nodes differ: {', '.join(comparison.get('diverging_nodes') or [])}"
        ),
        "problem": problem,
        "drafted_at": now(),
    }


def report_number(body: dict[str, Any], signed_at: str, signer: str) -> str:
    """PT-<date signed>-<8 hex digits of the body, time and signer>: short enough to
    quote on the phone, and unique to one signing."""
    digest = hashlib.sha256(
        codec.canonical({"body": body, "signed_at": signed_at, "signer": signer})
    ).hexdigest()
    return f"PT-{signed_at[:10].replace('-', '')}-{digest[:8].upper()}"


def sign(body: dict[str, Any], identity: Identity, at: str | None = None) -> dict[str, Any]:
    """Sign a drafted body here with the regulator's key (it never leaves this process)."""
    cred = identity.credential
    if cred is None:
        raise ReportError("signing a report needs the certificate of the key")
    if REGULATOR_ROLE not in cred.roles:
        raise ReportError(f"{cred.describe()} is not a regulator's certificate")
    signed_at = at or now()
    report = {
        **body,
        "number": report_number(body, signed_at, cred.fingerprint),
        "signed_at": signed_at,
        "auditor": {
            "fingerprint": cred.fingerprint,
            "organization": cred.org,
            "name": cred.common_name,
        },
    }
    value = identity.key.sign(codec.domain_bytes(DOMAIN, report))
    return {
        "report": report,
        "signature": {
            "signer": cred.fingerprint,
            "certificate": cred.pem,
            "scheme": identity.key.scheme,
            "value": codec.b64encode(value),
        },
    }


@dataclass(frozen=True)
class ReportCheck:
    ok: bool  # what the report says about the chain
    result: str
    chain_id: str
    head_height: int | None
    head_hash: str | None
    signer: str  # cn@org
    signed_at: str

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, **self.__dict__}


def _object(data: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) != set(keys):
        raise ReportError(f"{where}: fields must be {', '.join(keys)}")
    return data


def verify_report(data: Any, genesis: Genesis) -> ReportCheck:
    """Check a signed report against a trusted genesis; ReportError says what fails."""
    obj = _object(data, SIGNED_FIELDS, "signed report")
    report, sig = obj["report"], _object(obj["signature"], SIGNATURE_FIELDS, "signature")
    if not isinstance(report, dict) or report.get("type") != REPORT_TYPE:
        raise ReportError(f"report: not a {REPORT_TYPE}")
    if report.get("version") != VERSION:
        raise ReportError(f"report.version: expected {VERSION}")
    if report.get("chain_id") != genesis.chain_id or report.get("genesis_hash") != genesis.hash:
        raise ReportError("report: made for another chain or genesis than the one given")
    if not isinstance(sig["certificate"], str) or not isinstance(sig["signer"], str):
        raise ReportError("signature: certificate (PEM) and signer (fingerprint) are strings")
    try:
        cred = Credential.from_pem(sig["certificate"], "signature.certificate")
        check_issued_by(cred, load_certificate(genesis.ca_certificate))
    except LedgerError as exc:
        raise ReportError(f"signature.certificate: {exc.message}") from exc
    if cred.fingerprint != sig["signer"]:
        raise ReportError("signature.signer is not the fingerprint of signature.certificate")
    if REGULATOR_ROLE not in cred.roles:
        raise ReportError(f"{cred.describe()} does not hold the regulator role")
    auditor = report.get("auditor")
    if not isinstance(auditor, dict) or auditor.get("fingerprint") != cred.fingerprint:
        raise ReportError("report.auditor does not name the certificate that signed it")
    try:
        signed_at: datetime = parse_time(report.get("signed_at"), "report.signed_at")
        check_validity(cred, signed_at)
        value = codec.b64decode(sig["value"], field="signature.value")
    except LedgerError as exc:
        raise ReportError(exc.message) from exc
    if sig["scheme"] != cred.public_key.scheme or not cred.public_key.verify(
        value, codec.domain_bytes(DOMAIN, report)
    ):
        raise ReportError(
            f"the signature does not verify with {cred.describe()}: the report was changed "
            "after it was signed, or signed with another key"
        )
    head = report.get("head") if isinstance(report.get("head"), dict) else {}
    return ReportCheck(
        bool(report.get("ok")),
        str(report.get("result")),
        genesis.chain_id,
        head.get("height"),
        head.get("hash"),
        f"{cred.common_name}@{cred.org}",
        report["signed_at"],
    )
