"""X.509 identities, the genesis document and the write policy."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ledger.consortium import SAMPLE_CONFIG, Consortium, ConsortiumConfig, build_consortium
from ledger.crypto import PrivateKey
from ledger.errors import EncodingError, IdentityError, LedgerError, SchemaError
from ledger.genesis import Genesis
from ledger.identity import (
    Credential,
    check_ca,
    check_ca_validity,
    check_issued_by,
    check_validity,
    create_ca,
    fingerprint,
    issue_certificate,
    load_certificate,
)
from ledger.policy import Policy, normalize_biz_step

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARK = Consortium.sample(now=T0)
OTHER = Consortium.sample(seed=b"another park", now=T0)
CA = load_certificate(PARK.genesis.ca_certificate)


def all_credentials(park: Consortium) -> list[Credential]:
    genesis = park.genesis
    return [c for _, creds in genesis.organizations for c in creds] + [
        c for _, c in genesis.validators
    ]


# -- certificates ------------------------------------------------------------------------


def test_every_certificate_chains_to_the_ca_and_names_its_holder() -> None:
    check_ca(CA)
    creds = all_credentials(PARK)
    assert len(creds) == 14  # 10 organisation admins + 4 validator nodes
    for cred in creds:
        check_issued_by(cred, CA)
        der = cred.certificate.public_bytes(serialization.Encoding.DER)
        assert cred.fingerprint == hashlib.sha256(der).hexdigest() == fingerprint(cred.certificate)
        assert cred.not_before == T0 and cred.not_after == T0 + timedelta(days=730)
    mask = PARK.user("ganzhou-mask-factory")
    cred = Credential.from_pem(mask.certificate)
    assert (cred.org, cred.roles, cred.common_name) == (
        "ganzhou-mask-factory",
        ("producer", "validator"),
        "admin",
    )
    assert mask.key is not None and cred.public_key == mask.key.public_key


def test_certificate_from_another_ca_is_refused() -> None:
    foreign = Credential.from_pem(OTHER.user("gannan-orchard-coop").certificate)
    with pytest.raises(IdentityError, match="is not issued by the consortium CA"):
        check_issued_by(foreign, CA)


def test_member_certificate_is_not_a_ca_and_ca_is_not_a_member() -> None:
    member = Credential.from_pem(PARK.user("gannan-orchard-coop").certificate)
    with pytest.raises(IdentityError, match="not a CA"):
        check_ca(member.certificate)


def test_validity_period_bounds() -> None:
    cred = Credential.from_pem(PARK.user("gannan-orchard-coop").certificate)
    check_validity(cred, T0)
    check_validity(cred, cred.not_after)
    with pytest.raises(IdentityError, match="not yet valid"):
        check_validity(cred, T0 - timedelta(seconds=1))
    with pytest.raises(IdentityError, match="expired on"):
        check_validity(cred, cred.not_after + timedelta(seconds=1))


def _self_issued(subject: list[x509.NameAttribute]) -> str:
    key = PrivateKey.from_seed(b"x" * 32)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(CA.subject)
        .public_key(key.crypto_key.public_key())
        .serial_number(7)
        .not_valid_before(T0)
        .not_valid_after(T0 + timedelta(days=1))
        .sign(key.crypto_key, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("pem", "error", "reason"),
    [
        ("not a certificate", SchemaError, "exactly one PEM certificate"),
        (PARK.genesis.ca_certificate * 2, SchemaError, "exactly one PEM certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            SchemaError,
            "not a valid PEM",
        ),
        (
            _self_issued([x509.NameAttribute(NameOID.COMMON_NAME, "x")]),
            IdentityError,
            "exactly one O and one CN",
        ),
        (
            _self_issued(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "x"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gannan-orchard-coop"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "farmer"),
                ]
            ),
            IdentityError,
            "OU must name distinct roles",
        ),
    ],
)
def test_malformed_certificates(pem: str, error: type[LedgerError], reason: str) -> None:
    with pytest.raises(error, match=reason):
        Credential.from_pem(pem)


def test_forged_issuer_name_is_caught_by_the_signature() -> None:
    forged = Credential.from_pem(
        _self_issued(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gannan-orchard-coop"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "producer"),
            ]
        )
    )
    with pytest.raises(IdentityError, match="not issued by the consortium CA"):
        check_issued_by(forged, CA)


def test_issue_refuses_unknown_roles() -> None:
    key = PrivateKey.from_seed(b"k" * 32)
    with pytest.raises(SchemaError, match="roles"):
        issue_certificate(
            key,
            CA,
            key.public_key,
            org="o",
            roles=("farmer",),
            common_name="x",
            not_before=T0,
            days=1,
        )


# -- genesis -----------------------------------------------------------------------------


def test_genesis_roundtrip_and_hash() -> None:
    genesis = PARK.genesis
    doc = genesis.to_json()
    again = Genesis.from_json(json.loads(json.dumps(doc)))
    assert again == genesis and again.hash == genesis.hash
    assert genesis.to_json() == doc
    state = genesis.initial_state()
    assert (state.chain_id, state.genesis_hash, state.height) == (
        "parktrace-park-1",
        genesis.hash,
        0,
    )
    assert state.genesis_time == "2026-01-01T00:00:00.000Z"
    assert [v.id for v in genesis.validator_set().validators] == [
        "park-committee-node",
        "market-supervision-node",
        "testing-centre-node",
        "mask-factory-node",
    ]
    assert genesis.validator_set().quorum == 3
    assert {o.id for o, _ in genesis.organizations} >= {"market-supervision-bureau"}


def test_genesis_file_formatting_does_not_change_the_hash(tmp_path) -> None:
    path = tmp_path / "genesis.json"
    PARK.genesis.write(path)
    assert Genesis.load(path).hash == PARK.genesis.hash
    path.write_text(json.dumps(PARK.genesis.to_json(), separators=(",", ":")))
    assert Genesis.load(path).hash == PARK.genesis.hash
    path.write_text("{not json")
    with pytest.raises(EncodingError, match="not valid JSON"):
        Genesis.load(path)


def test_seeded_build_is_deterministic() -> None:
    config = ConsortiumConfig.load(SAMPLE_CONFIG)
    a = build_consortium(config, now=T0, seed=b"same")
    b = build_consortium(config, now=T0, seed=b"same")
    c = build_consortium(config, now=T0, seed=b"different")
    assert a.genesis.hash == b.genesis.hash != c.genesis.hash


def _swap_first_certificates(doc: dict[str, Any]) -> None:
    orgs = doc["organizations"]
    orgs[3]["certificates"], orgs[4]["certificates"] = (
        orgs[4]["certificates"],
        orgs[3]["certificates"],
    )


def _mutations() -> list[tuple[str, Any, type[LedgerError], str]]:
    other_ca = OTHER.genesis.ca_certificate
    return [
        ("drop version", lambda d: d.pop("version"), SchemaError, "missing field.*version"),
        ("extra field", lambda d: d.update(extra=1), SchemaError, "unknown field.*extra"),
        ("version 2", lambda d: d.update(version=2), SchemaError, "genesis.version"),
        ("chain id", lambda d: d.update(chain_id="Park 1"), SchemaError, "genesis.chain_id"),
        ("time", lambda d: d.update(genesis_time="2026-01-01"), SchemaError, "genesis_time"),
        ("no orgs", lambda d: d.update(organizations=[]), SchemaError, "organizations: expected"),
        (
            "foreign CA",
            lambda d: d.update(ca_certificate=other_ca),
            IdentityError,
            "not issued by the consortium CA",
        ),
        (
            "cert under another org",
            _swap_first_certificates,
            IdentityError,
            "listed under organisation 'gannan-orchard-coop' but its subject O names",
        ),
        (
            "role beyond org",
            lambda d: d["organizations"][1].update(roles=["validator"]),
            IdentityError,
            "claims role.*regulator",
        ),
        (
            "unknown org role",
            lambda d: d["organizations"][0].update(roles=["mayor"]),
            SchemaError,
            "unknown role.*mayor",
        ),
        (
            "validator key mismatch",
            lambda d: d["validators"][0].update(public_key=d["validators"][1]["public_key"]),
            IdentityError,
            "public_key differs",
        ),
        (
            "validator without role",
            lambda d: d["validators"][0].update(org="gannan-orchard-coop"),
            LedgerError,
            "validator role",
        ),
        (
            "duplicate validator id",
            lambda d: d["validators"].append(copy.deepcopy(d["validators"][0])),
            SchemaError,
            "duplicate ids",
        ),
        (
            "validator certificate reused",
            lambda d: d["validators"].append({**d["validators"][0], "id": "second-node"}),
            LedgerError,
            "already registered|registered twice",
        ),
        (
            "approval of stranger",
            lambda d: d.update(membership_approval={"m": 1, "of": ["nobody"]}),
            SchemaError,
            "'nobody' is neither an organisation id",
        ),
        (
            "approval m > n",
            lambda d: d.update(membership_approval={"m": 2, "of": ["park-committee"]}),
            SchemaError,
            "m: expected an integer from 1 to 1",
        ),
        (
            "policy role",
            lambda d: d["policy"]["transactions"].update(recall=["mayor"]),
            SchemaError,
            "policy.transactions\\['recall'\\]: unknown role",
        ),
        (
            "policy URN step",
            lambda d: d["policy"]["biz_steps"].update(
                {"urn:epcglobal:cbv:bizstep:shipping": ["logistics"]}
            ),
            SchemaError,
            "write 'urn:epcglobal:cbv:bizstep:shipping' as 'shipping'",
        ),
    ]


@pytest.mark.parametrize(
    ("mutate", "error", "reason"),
    [m[1:] for m in _mutations()],
    ids=[m[0] for m in _mutations()],
)
def test_genesis_is_strict(mutate: Any, error: type[LedgerError], reason: str) -> None:
    doc = copy.deepcopy(PARK.genesis.to_json())
    mutate(doc)
    with pytest.raises(error, match=reason):
        Genesis.from_json(doc)


def test_ca_validity_is_checked_too() -> None:
    key = PrivateKey.from_seed(b"c" * 32)
    short_ca = create_ca(key, common_name="Old", organization="Old", not_before=T0, days=10)
    check_ca_validity(short_ca, T0 + timedelta(days=5))
    with pytest.raises(IdentityError, match="consortium CA certificate is not valid"):
        check_ca_validity(short_ca, T0 + timedelta(days=11))


# -- policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "step"),
    [
        ("inspecting", "inspecting"),
        ("urn:epcglobal:cbv:bizstep:inspecting", "inspecting"),
        ("https://ref.gs1.org/cbv/BizStep-inspecting", "inspecting"),
        ("https://park.example/bizstep/drying", "https://park.example/bizstep/drying"),
        ("urn:epcglobal:cbv:bizstep:", "urn:epcglobal:cbv:bizstep:"),
    ],
)
def test_biz_step_spellings(spelling: str, step: str) -> None:
    assert normalize_biz_step(spelling) == step


def test_private_biz_steps_are_data() -> None:
    policy = Policy.from_json(
        {
            "transactions": {"epcis.event": ["processor"]},
            "biz_steps": {"https://park.example/bizstep/drying": ["processor"]},
            "unlisted_biz_steps": [],
        }
    )
    ok = {"event": {"bizStep": "https://park.example/bizstep/drying"}}
    policy.check("epcis.event", ok, ("processor",), "p")
    assert Policy.from_json(policy.to_json()) == policy
