"""X.509 identities of the consortium: the root CA, member and validator certificates.

One level of hierarchy on purpose: the consortium CA signs every member certificate
directly, so "chains to the CA" is one signature check that every node can make the same
way, with no path building. A certificate says who it belongs to in its subject: O is the
organisation id of genesis, each OU one role, CN the user or node name. Genesis and
membership cross-check those names against the organisations they list, so a certificate
can never claim a role its organisation was not given.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .crypto import DEFAULT_SCHEME, PrivateKey, PublicKey
from .errors import IdentityError, SchemaError

#: Every role a certificate or organisation may carry.
ROLES = ("producer", "processor", "logistics", "inspector", "retailer", "regulator", "validator")
#: Organisation ids, user names and validator ids: safe in a certificate, a path and a URL.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
#: A GS1 Company Prefix: 6 to 12 digits.
PREFIX_RE = re.compile(r"^[0-9]{6,12}$")


def parse_roles(value: Any, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A list of distinct known role names, in the order given."""
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise SchemaError(f"{what}: expected a list of role names")
    unknown = [r for r in value if r not in ROLES]
    if unknown:
        raise SchemaError(
            f"{what}: unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}"
        )
    if len(set(value)) != len(value):
        raise SchemaError(f"{what}: repeats a role")
    if not value and not allow_empty:
        raise SchemaError(f"{what}: needs at least one role")
    return tuple(value)


def parse_prefixes(value: Any, what: str) -> tuple[str, ...]:
    """Distinct GS1 Company Prefixes: 6 to 12 digits each (GS1 General Specifications 1.4)."""
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise SchemaError(f"{what}: expected a list of GS1 Company Prefixes (strings of digits)")
    for prefix in value:
        if not PREFIX_RE.fullmatch(prefix):
            raise SchemaError(f"{what}: {prefix!r} is not a GS1 Company Prefix (6 to 12 digits)")
    if len(set(value)) != len(value):
        raise SchemaError(f"{what}: repeats a prefix")
    return tuple(value)


def parse_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise SchemaError(
            f"{what}: {value!r} is not a valid id (lowercase letters, digits, '.', '_', '-'; "
            "at most 63 characters)"
        )
    return value


@dataclass(frozen=True)
class Organization:
    """A member organisation as genesis names it; its roles bound its certificates' roles,
    its GS1 Company Prefixes the GTINs it may issue codes for."""

    id: str
    name: str
    name_zh: str
    roles: tuple[str, ...]
    gs1_prefixes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "name_zh": self.name_zh,
            "roles": list(self.roles),
        }
        if self.gs1_prefixes:  # absent, not empty: genesis files from before keep their hash
            data["gs1_prefixes"] = list(self.gs1_prefixes)
        return data


def load_certificate(pem: str | bytes, what: str = "certificate") -> x509.Certificate:
    """Parse one PEM certificate; anything else (several, DER, junk) is a SchemaError."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    if data.count(b"-----BEGIN CERTIFICATE-----") != 1:
        raise SchemaError(f"{what}: expected exactly one PEM certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SchemaError(f"{what}: not a valid PEM certificate ({exc})") from exc


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 (hex) of the DER certificate: what `Transaction.signer` names."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def public_key(cert: x509.Certificate) -> PublicKey:
    """The certificate's key as a ledger `PublicKey` (Ed25519 only, for now)."""
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise IdentityError(
            f"certificate {fingerprint(cert)[:16]}… holds a {type(key).__name__}; "
            f"this chain accepts {DEFAULT_SCHEME} keys only"
        )
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKey(DEFAULT_SCHEME, raw)


def _attrs(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


@dataclass(frozen=True)
class Credential:
    """What a member certificate says, read once: who, which roles, which key, when."""

    certificate: x509.Certificate = field(repr=False)
    pem: str = field(repr=False)
    fingerprint: str
    org: str
    roles: tuple[str, ...]
    common_name: str
    public_key: PublicKey
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_pem(cls, pem: str, what: str = "certificate") -> Credential:
        cert = load_certificate(pem, what)
        fp = fingerprint(cert)
        orgs = _attrs(cert.subject, NameOID.ORGANIZATION_NAME)
        cns = _attrs(cert.subject, NameOID.COMMON_NAME)
        roles = tuple(_attrs(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME))
        if len(orgs) != 1 or len(cns) != 1:
            raise IdentityError(f"{what} {fp[:16]}…: subject must have exactly one O and one CN")
        unknown = [r for r in roles if r not in ROLES]
        if not roles or unknown or len(set(roles)) != len(roles):
            raise IdentityError(
                f"{what} {fp[:16]}…: subject OU must name distinct roles from {', '.join(ROLES)}"
                f"; got {list(roles)}"
            )
        return cls(
            cert,
            pem,
            fp,
            orgs[0],
            roles,
            cns[0],
            public_key(cert),
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
        )

    def describe(self) -> str:
        return f"certificate {self.fingerprint[:16]}… ({self.common_name}@{self.org})"


# -- checks --------------------------------------------------------------------------------


def check_ca(ca: x509.Certificate) -> None:
    """The consortium root must be a self-signed CA certificate with an Ed25519 key."""
    constraints = _basic_constraints(ca)
    if constraints is None or not constraints.ca:
        raise IdentityError("consortium CA certificate is not a CA (BasicConstraints ca=false)")
    public_key(ca)
    try:
        ca.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise IdentityError("consortium CA certificate is not self-signed") from exc


def check_issued_by(cred: Credential, ca: x509.Certificate) -> None:
    """Raise IdentityError unless the consortium CA signed this (non-CA) certificate."""
    try:
        cred.certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise IdentityError(
            f"{cred.describe()} is not issued by the consortium CA "
            f"(issuer {cred.certificate.issuer.rfc4514_string()!r})"
        ) from exc
    constraints = _basic_constraints(cred.certificate)
    if constraints is not None and constraints.ca:
        raise IdentityError(f"{cred.describe()} is a CA certificate; members may not issue")


def check_validity(cred: Credential, at: datetime) -> None:
    """Raise IdentityError unless `at` lies within the certificate's validity period."""
    if at < cred.not_before:
        raise IdentityError(
            f"{cred.describe()} is not yet valid at {at.isoformat()}: "
            f"valid from {cred.not_before.isoformat()}"
        )
    if at > cred.not_after:
        raise IdentityError(
            f"{cred.describe()} expired on {cred.not_after.isoformat()} "
            f"(checked at {at.isoformat()})"
        )


def check_ca_validity(ca: x509.Certificate, at: datetime) -> None:
    if not ca.not_valid_before_utc <= at <= ca.not_valid_after_utc:
        raise IdentityError(
            f"consortium CA certificate is not valid at {at.isoformat()} "
            f"({ca.not_valid_before_utc.isoformat()} to {ca.not_valid_after_utc.isoformat()})"
        )


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


# -- issuing -------------------------------------------------------------------------------


def create_ca(
    key: PrivateKey,
    *,
    common_name: str,
    organization: str,
    not_before: datetime,
    days: int,
    serial: int | None = None,
) -> x509.Certificate:
    """A self-signed root that may sign member certificates only (path length 0)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.crypto_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.crypto_key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    return builder.sign(key.crypto_key, None)


def issue_certificate(
    ca_key: PrivateKey,
    ca: x509.Certificate,
    subject_key: PublicKey,
    *,
    org: str,
    roles: tuple[str, ...] | list[str],
    common_name: str,
    not_before: datetime,
    days: int,
    serial: int | None = None,
) -> x509.Certificate:
    """A member (user or validator node) certificate: O=org, one OU per role, CN=name."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise SchemaError(f"roles must be a non-empty list from {', '.join(ROLES)}")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, r) for r in roles),
        ]
    )
    key = Ed25519PublicKey.from_public_bytes(subject_key.key)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if "validator" in roles:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)  # validators accept peer links
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    return builder.sign(ca_key.crypto_key, None)
