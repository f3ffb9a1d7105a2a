"""Membership: every rejection names its reason; changes take effect from the next block."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from ledger.block import CommitCertificate, Vote
from ledger.chain import ChainState, advance, build_block, check_next
from ledger.consortium import SAMPLE_CONFIG, Consortium, ConsortiumConfig, build_consortium
from ledger.crypto import PrivateKey
from ledger.errors import (
    ChainMismatchError,
    IdentityError,
    NotPermittedError,
    SchemaError,
    SignatureError,
)
from ledger.genesis import Genesis
from ledger.identity import Credential, load_certificate
from ledger.membership import (
    ADD_ORG,
    REVOKE,
    ROTATE_KEY,
    SET_VALIDATORS,
    Membership,
    sign_approval,
)
from ledger.store import Store
from ledger.tx import Transaction
from ledger.verify import verify_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = "2026-03-01T08:00:00.000Z"  # a block time well inside every certificate's validity
PARK = Consortium.sample(now=T0)
MEMBERSHIP = PARK.genesis.membership()

ORCHARD = "gannan-orchard-coop"
PACKER = "ganzhou-packing-house"
LAB = "testing-centre"
MSB = "market-supervision-bureau"
RETAIL = "retail-pharmacy-chain"


def event(step: str | None, lot: str = "urn:epc:class:lgtin:4012345.012345.LOT1") -> dict:
    ev = {"type": "ObjectEvent", "action": "OBSERVE", "quantityList": [{"epcClass": lot}]}
    if step is not None:
        ev["bizStep"] = step
    return {"event": ev}


def fp(org: str, park: Consortium = PARK) -> str:
    return park.user_key(org)[1]


# -- accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("org", "step"),
    [
        (ORCHARD, "commissioning"),
        (ORCHARD, "urn:epcglobal:cbv:bizstep:commissioning"),
        (PACKER, "https://ref.gs1.org/cbv/BizStep-packing"),
        (LAB, "inspecting"),
        ("cold-chain-logistics", "transporting"),
        (RETAIL, "retail_selling"),
        # every CBV step a role plausibly performs, no step at all, and the park's own steps
        ("notoginseng-processor", "installing"),
        (LAB, "other"),
        (ORCHARD, None),
        (ORCHARD, "https://ns.parktrace.example/bizstep/cultivating"),
        ("notoginseng-processor", "https://ns.parktrace.example/bizstep/drying"),
    ],
)
def test_permitted_events_pass(org: str, step: str | None) -> None:
    tx = PARK.sign_tx(org, "epcis.event", event(step))
    member = MEMBERSHIP.check_tx(tx, 1, AT)
    assert member.org == org and member.fingerprint == tx.signer


def test_events_without_a_step_default_to_the_unlisted_rule_and_keep_old_genesis_bytes() -> None:
    from ledger.policy import Policy

    old = {"transactions": {"epcis.event": ["producer"]}, "biz_steps": {},
           "unlisted_biz_steps": []}  # fmt: skip
    policy = Policy.from_json(old)
    assert policy.to_json() == old  # a genesis from before no_biz_step hashes as it did
    with pytest.raises(NotPermittedError, match="no bizStep; allowed roles: none"):
        policy.check("epcis.event", event(None), ("producer",), "grower")
    given = Policy.from_json({**old, "no_biz_step": ["producer"]})
    assert given.to_json()["no_biz_step"] == ["producer"]
    given.check("epcis.event", event(None), ("producer",), "grower")
    with pytest.raises(NotPermittedError, match="bizStep 'x:y'; allowed roles: none"):
        given.check("epcis.event", event("x:y"), ("producer",), "grower")


def test_regulator_records_recall() -> None:
    tx = PARK.sign_tx(MSB, "recall", {"lot": "urn:epc:class:lgtin:4012345.012345.LOT1"})
    assert MEMBERSHIP.check_tx(tx, 1, AT).roles == ("regulator", "validator")


# -- each rejection, with its reason ---------------------------------------------------


def test_unknown_signer() -> None:
    stranger = PrivateKey.from_seed(b"s" * 32)
    tx = Transaction.create(
        stranger,
        chain_id=PARK.genesis.chain_id,
        type="epcis.event",
        payload=event("commissioning"),
        signer="ab" * 32,
    )
    with pytest.raises(IdentityError, match="unknown signer: no certificate with fingerprint abab"):
        MEMBERSHIP.check_tx(tx, 1, AT)


def test_member_of_another_consortium_is_unknown() -> None:
    other = Consortium.sample(seed=b"another park", now=T0)
    tx = other.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    tx = dataclasses.replace(tx, chain_id=PARK.genesis.chain_id)
    with pytest.raises(IdentityError, match="unknown signer"):
        MEMBERSHIP.check_tx(tx, 1, AT)


def test_certificate_from_another_ca() -> None:
    other = Consortium.sample(seed=b"another park", now=T0)
    foreign_ca = dataclasses.replace(MEMBERSHIP, ca=load_certificate(other.genesis.ca_certificate))
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    with pytest.raises(IdentityError, match="is not issued by the consortium CA"):
        foreign_ca.check_tx(tx, 1, AT)


def test_expired_certificate() -> None:
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    with pytest.raises(IdentityError, match=r"signer certificate .* expired on 2028-01-01"):
        MEMBERSHIP.check_tx(tx, 1, "2028-06-01T00:00:00.000Z")


def test_not_yet_valid_certificate() -> None:
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    with pytest.raises(IdentityError, match=r"is not yet valid .* valid from 2026-01-01"):
        MEMBERSHIP.check_tx(tx, 1, "2025-12-31T23:00:00.000Z")


def test_revoked_certificate() -> None:
    revoke = PARK.membership_tx(
        MSB, REVOKE, {"certificate": fp(ORCHARD), "reason": "keyCompromise"}
    )
    MEMBERSHIP.check_tx(revoke, 3, AT)
    after = MEMBERSHIP.apply(revoke, 3)
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    with pytest.raises(IdentityError, match=r"revoked at height 3 \(keyCompromise\).*height 4"):
        after.check_tx(tx, 4, AT)


@pytest.mark.parametrize(
    ("org", "tx_type", "payload", "reason"),
    [
        (
            ORCHARD,
            "epcis.event",
            event("inspecting"),
            r"admin@gannan-orchard-coop \(roles producer\) may not record EPCIS events with "
            r"bizStep 'inspecting'; allowed roles: inspector",
        ),
        (
            MSB,
            "epcis.event",
            event("urn:epcglobal:cbv:bizstep:inspecting"),
            "bizStep 'inspecting'; allowed roles: inspector",
        ),
        (
            RETAIL,
            "recall",
            {"lot": "x"},
            r"may not record 'recall' transactions; allowed roles: regulator",
        ),
        (ORCHARD, "codes.issue_all", {}, "transaction type 'codes.issue_all' is not in the write"),
        (
            ORCHARD,
            "epcis.event",
            event("summarising"),
            "bizStep 'summarising'; allowed roles: none",
        ),
        (
            ORCHARD,
            "epcis.event",
            event("https://ns.parktrace.example/bizstep/drying"),
            "bizStep 'https://ns.parktrace.example/bizstep/drying'; allowed roles: processor",
        ),
        (LAB, "epcis.event", event("retail_selling"), "allowed roles: retailer"),
        (
            ORCHARD,
            REVOKE,
            {"change": {}, "approvals": []},
            "may not record 'membership.revoke' transactions; allowed roles: regulator",
        ),
        ("park-committee", "epcis.event", event("commissioning"), r"\(roles validator\)"),
    ],
)
def test_role_not_permitted(org: str, tx_type: str, payload: dict, reason: str) -> None:
    tx = PARK.sign_tx(org, tx_type, payload)
    with pytest.raises(NotPermittedError, match=reason):
        MEMBERSHIP.check_tx(tx, 1, AT)


def test_signature_by_another_key() -> None:
    thief = PrivateKey.from_seed(b"t" * 32)
    tx = Transaction.create(
        thief,
        chain_id=PARK.genesis.chain_id,
        type="epcis.event",
        payload=event("commissioning"),
        signer=fp(ORCHARD),
    )
    with pytest.raises(SignatureError, match=r"not made by the key of certificate .*admin@gannan"):
        MEMBERSHIP.check_tx(tx, 1, AT)


def test_signature_by_another_members_key() -> None:
    packer_key, _ = PARK.user_key(PACKER)
    tx = Transaction.create(
        packer_key,
        chain_id=PARK.genesis.chain_id,
        type="epcis.event",
        payload=event("commissioning"),
        signer=fp(ORCHARD),
    )
    with pytest.raises(SignatureError):
        MEMBERSHIP.check_tx(tx, 1, AT)


def test_other_chain() -> None:
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    with pytest.raises(ChainMismatchError):
        MEMBERSHIP.check_tx(dataclasses.replace(tx, chain_id="elsewhere"), 1, AT)


def test_malformed_event_payload() -> None:
    tx = PARK.sign_tx(ORCHARD, "epcis.event", {"events": []})
    with pytest.raises(SchemaError, match=r"payload\.event"):
        MEMBERSHIP.check_tx(tx, 1, AT)


# -- revocation: effective from the next block, history stays valid ---------------------


def test_revocation_takes_effect_from_the_next_block() -> None:
    revoke = PARK.membership_tx(MSB, REVOKE, {"certificate": fp(ORCHARD), "reason": "left park"})
    same_block = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    MEMBERSHIP.check_tx(revoke, 5, AT)
    MEMBERSHIP.check_tx(same_block, 5, AT)
    after = MEMBERSHIP.apply(revoke, 5)
    assert after.check_tx(same_block, 5, AT)  # re-verified later: still valid at its height
    with pytest.raises(IdentityError, match="revoked at height 5"):
        after.check_tx(PARK.sign_tx(ORCHARD, "epcis.event", event("shipping")), 6, AT)
    assert MEMBERSHIP.member(fp(ORCHARD)).revoked_height is None  # values are immutable


def _commit(
    store: Store,
    state: ChainState,
    membership: Membership,
    txs: list[Transaction],
    time: str,
    last: CommitCertificate | None,
    validator_keys: dict[str, PrivateKey],
) -> tuple[ChainState, Membership, CommitCertificate]:
    """What a node does with a decided block: check, store, apply."""
    height = state.height + 1
    for tx in txs:
        membership.check_tx(tx, height, time)
    block = build_block(
        state,
        txs=txs,
        time=time,
        proposer=state.validators.proposer(height, 0).id,
        last_commit=last,
    )
    nodes = check_next(state, block)
    votes = [
        Vote(state.chain_id, height, 0, "precommit", block.hash, v.id).signed(validator_keys[v.id])
        for v in state.validators.validators
    ]
    commit = CommitCertificate.from_votes(votes)
    store.save_block(block, commit, nodes)
    for tx in txs:
        membership = membership.apply(tx, height)
    return advance(state, block, membership.validators), membership, commit


def test_whole_chain_reverifies_across_revocation_and_validator_change(tmp_path) -> None:
    genesis = PARK.genesis
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    store.bind_chain(genesis.chain_id, genesis.hash, genesis.to_json())
    keys = dict(PARK.validator_keys)
    state, membership, last = genesis.initial_state(), genesis.membership(), None

    early = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    revoke = PARK.membership_tx(MSB, REVOKE, {"certificate": fp(ORCHARD), "reason": "left park"})
    state, membership, last = _commit(
        store, state, membership, [early, revoke], "2026-03-01T08:00:00.000Z", last, keys
    )

    # Block 2: the revoked key is refused; the mask factory adds a second validator node.
    late = PARK.sign_tx(ORCHARD, "epcis.event", event("shipping"))
    with pytest.raises(IdentityError, match="revoked at height 1"):
        membership.check_tx(late, 2, "2026-03-01T08:01:00.000Z")
    node_key = PrivateKey.from_seed(b"n" * 32)
    cred = PARK.issue("ganzhou-mask-factory", "mask-factory-node-2", node_key, roles=("validator",))
    entries = [{**v.to_json(), "certificate": c.pem} for v, c in genesis.validators]
    entries.append(
        {
            "id": "mask-factory-node-2",
            "org": "ganzhou-mask-factory",
            "public_key": node_key.public_key.to_json(),
            "certificate": cred.pem,
        }
    )
    change = {"previous": membership.validators.hash(), "validators": entries}
    add_node = PARK.membership_tx(MSB, SET_VALIDATORS, change)
    shipped = PARK.sign_tx(PACKER, "epcis.event", event("shipping"))
    state, membership, last = _commit(
        store, state, membership, [shipped, add_node], "2026-03-01T08:01:00.000Z", last, keys
    )
    assert state.validators.size == 5

    # Block 3 is certified by the new validator set, including the new node.
    keys["mask-factory-node-2"] = node_key
    received = PARK.sign_tx(RETAIL, "epcis.event", event("receiving"))
    state, membership, last = _commit(
        store, state, membership, [received], "2026-03-01T08:02:00.000Z", last, keys
    )
    assert len(last.signatures) == 5

    report = verify_store(store, genesis)
    assert report.ok, report.problem
    assert (report.blocks, report.transactions) == (3, 5)
    # The final membership still accepts the early transaction at the height it was committed.
    assert membership.check_tx(early, 1, "2026-03-01T08:00:00.000Z").org == ORCHARD
    store.close()


# -- membership changes ---------------------------------------------------------------------


def _new_org_change(
    park: Consortium,
    org_id: str = "ganzhou-tea-coop",
    roles: tuple[str, ...] = ("producer",),
    cert_org: str | None = None,
) -> tuple[dict, PrivateKey, Credential]:
    key = PrivateKey.from_seed(b"o" * 32)
    cred = park.issue(cert_org or org_id, "admin", key, roles=roles)
    org = {
        "id": org_id,
        "name": "Ganzhou Tea Cooperative",
        "name_zh": "赣州茶叶合作社",
        "roles": ["producer"],
        "certificates": [cred.pem],
    }
    return {"organization": org}, key, cred


def test_added_organisation_signs_from_the_next_block() -> None:
    change, key, cred = _new_org_change(PARK)
    add = PARK.membership_tx(MSB, ADD_ORG, change)
    MEMBERSHIP.check_tx(add, 2, AT)
    after = MEMBERSHIP.apply(add, 2)
    tx = Transaction.create(
        key,
        chain_id=PARK.genesis.chain_id,
        type="epcis.event",
        payload=event("commissioning"),
        signer=cred.fingerprint,
    )
    with pytest.raises(IdentityError, match="joined at height 2; it signs from height 3"):
        after.check_tx(tx, 2, AT)
    assert after.check_tx(tx, 3, AT).org == "ganzhou-tea-coop"
    assert "ganzhou-tea-coop" not in MEMBERSHIP.organizations


def test_add_org_rejections() -> None:
    other = Consortium.sample(seed=b"another park", now=T0)
    change, _, _ = _new_org_change(other)
    with pytest.raises(IdentityError, match="not issued by the consortium CA"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, ADD_ORG, change), 2, AT)
    change, _, _ = _new_org_change(PARK, roles=("producer", "inspector"))
    with pytest.raises(IdentityError, match=r"claims role.* inspector"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, ADD_ORG, change), 2, AT)
    change, _, _ = _new_org_change(PARK, org_id=ORCHARD)
    with pytest.raises(NotPermittedError, match="already a member"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, ADD_ORG, change), 2, AT)
    change, _, _ = _new_org_change(PARK, cert_org=PACKER)
    with pytest.raises(IdentityError, match="subject O names 'ganzhou-packing-house'"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, ADD_ORG, change), 2, AT)
    with pytest.raises(SchemaError, match="change: missing field"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, ADD_ORG, {}), 2, AT)


def test_key_rotation() -> None:
    old_key, old_fp = PARK.user_key(ORCHARD)
    new_key = PrivateKey.from_seed(b"r" * 32)
    cred = PARK.issue(ORCHARD, "admin", new_key, roles=("producer",))
    change = {"certificate": old_fp, "new_certificate": cred.pem}
    unapproved = PARK.membership_tx(ORCHARD, ROTATE_KEY, change)
    with pytest.raises(NotPermittedError, match=r"needs approval by 1 of \[market-supervision"):
        MEMBERSHIP.check_tx(unapproved, 4, AT)
    rotate = PARK.membership_tx(ORCHARD, ROTATE_KEY, change, approvers=[MSB])
    MEMBERSHIP.check_tx(rotate, 4, AT)
    after = MEMBERSHIP.apply(rotate, 4)

    def signed(key: PrivateKey, signer: str) -> Transaction:
        return Transaction.create(
            key,
            chain_id=PARK.genesis.chain_id,
            type="epcis.event",
            payload=event("commissioning"),
            signer=signer,
        )

    after.check_tx(signed(old_key, old_fp), 4, AT)
    with pytest.raises(IdentityError, match="revoked at height 4 \\(superseded by"):
        after.check_tx(signed(old_key, old_fp), 5, AT)
    with pytest.raises(IdentityError, match="joined at height 4"):
        after.check_tx(signed(new_key, cred.fingerprint), 4, AT)
    assert after.check_tx(signed(new_key, cred.fingerprint), 5, AT).org == ORCHARD


def test_key_rotation_rejections() -> None:
    _, old_fp = PARK.user_key(ORCHARD)
    new_key = PrivateKey.from_seed(b"r" * 32)
    renamed = PARK.issue(ORCHARD, "someone-else", new_key, roles=("producer",))
    change = {"certificate": old_fp, "new_certificate": renamed.pem}
    with pytest.raises(NotPermittedError, match="keeps its holder"):
        MEMBERSHIP.check_tx(PARK.membership_tx(ORCHARD, ROTATE_KEY, change, approvers=[MSB]), 4, AT)
    cred = PARK.issue(ORCHARD, "admin", new_key, roles=("producer",))
    change = {"certificate": old_fp, "new_certificate": cred.pem}
    by_stranger = PARK.membership_tx("wenshan-growers", ROTATE_KEY, change, approvers=[MSB])
    with pytest.raises(NotPermittedError, match="signed by the certificate it replaces"):
        MEMBERSHIP.check_tx(by_stranger, 4, AT)


def test_rotating_an_approver_certificate_updates_the_rule() -> None:
    doc = PARK.genesis.to_json()
    msb_fp = fp(MSB)
    doc["membership_approval"] = {"m": 1, "of": [msb_fp]}
    membership = Genesis.from_json(doc).membership()
    new_key = PrivateKey.from_seed(b"m" * 32)
    cred = PARK.issue(MSB, "admin", new_key, roles=("regulator", "validator"))
    rotate = PARK.membership_tx(
        MSB, ROTATE_KEY, {"certificate": msb_fp, "new_certificate": cred.pem}
    )
    membership.check_tx(rotate, 1, AT)
    assert membership.apply(rotate, 1).approval.of == (cred.fingerprint,)


def test_set_validators_rejections() -> None:
    entries = [{**v.to_json(), "certificate": c.pem} for v, c in PARK.genesis.validators]
    stale = {"previous": "00" * 32, "validators": entries}
    with pytest.raises(NotPermittedError, match="stale or replayed"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, SET_VALIDATORS, stale), 2, AT)
    swapped = [dict(e) for e in entries]
    swapped[0]["public_key"] = entries[1]["public_key"]
    change = {"previous": MEMBERSHIP.validators.hash(), "validators": swapped}
    with pytest.raises(IdentityError, match="public_key differs from its certificate"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, SET_VALIDATORS, change), 2, AT)
    key = PrivateKey.from_seed(b"v" * 32)
    cred = PARK.issue(ORCHARD, "orchard-node", key, roles=("producer",))
    extra = {
        "id": "orchard-node",
        "org": ORCHARD,
        "public_key": key.public_key.to_json(),
        "certificate": cred.pem,
    }
    change = {"previous": MEMBERSHIP.validators.hash(), "validators": [*entries, extra]}
    with pytest.raises(NotPermittedError, match="must both hold the validator role"):
        MEMBERSHIP.check_tx(PARK.membership_tx(MSB, SET_VALIDATORS, change), 2, AT)


def test_revocation_guards() -> None:
    node_fp = PARK.nodes["testing-centre-node"].fingerprint
    with pytest.raises(NotPermittedError, match=r"membership\.set_validators first"):
        MEMBERSHIP.check_tx(
            PARK.membership_tx(MSB, REVOKE, {"certificate": node_fp, "reason": "x"}), 2, AT
        )
    revoke = PARK.membership_tx(MSB, REVOKE, {"certificate": fp(ORCHARD), "reason": "x"})
    after = MEMBERSHIP.apply(revoke, 2)
    again = PARK.membership_tx(MSB, REVOKE, {"certificate": fp(ORCHARD), "reason": "y"})
    with pytest.raises(NotPermittedError, match="already revoked at height 2"):
        after.check_tx(again, 3, AT)
    with pytest.raises(IdentityError, match="no such certificate"):
        MEMBERSHIP.check_tx(
            PARK.membership_tx(MSB, REVOKE, {"certificate": "cd" * 32, "reason": "x"}), 2, AT
        )


def test_revoking_the_last_approver_is_refused() -> None:
    doc = PARK.genesis.to_json()
    doc["membership_approval"] = {"m": 1, "of": [fp(MSB)]}
    membership = Genesis.from_json(doc).membership()
    revoke = PARK.membership_tx(MSB, REVOKE, {"certificate": fp(MSB), "reason": "retired"})
    with pytest.raises(NotPermittedError, match=r"approval rule \(1 of \[.*\]\) could never"):
        membership.check_tx(revoke, 2, AT)


def test_apply_ignores_other_transactions() -> None:
    tx = PARK.sign_tx(ORCHARD, "epcis.event", event("commissioning"))
    assert MEMBERSHIP.apply(tx, 1) is MEMBERSHIP


# -- M of N approvals --------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_of_three() -> Consortium:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'm = 1\nof = ["market-supervision-bureau"]',
        'm = 2\nof = ["market-supervision-bureau", "park-committee", "testing-centre"]',
    )
    return build_consortium(ConsortiumConfig.from_toml(text), now=T0, seed=b"two of three")


def test_m_of_n_counts_distinct_approvers(two_of_three: Consortium) -> None:
    park = two_of_three
    membership = park.genesis.membership()
    change = {"certificate": fp(ORCHARD, park), "reason": "keyCompromise"}
    alone = park.membership_tx(MSB, REVOKE, change)
    with pytest.raises(
        NotPermittedError,
        match=r"needs approval by 2 of .*approved by 1: "
        r"market-supervision-bureau",
    ):
        membership.check_tx(alone, 1, AT)
    not_listed = park.membership_tx(MSB, REVOKE, change, approvers=[ORCHARD])
    with pytest.raises(NotPermittedError, match="approved by 1"):
        membership.check_tx(not_listed, 1, AT)
    approved = park.membership_tx(MSB, REVOKE, change, approvers=["park-committee"])
    assert membership.check_tx(approved, 1, AT).org == MSB
    twice = park.membership_tx(MSB, REVOKE, change, approvers=["park-committee", "park-committee"])
    with pytest.raises(SchemaError, match="approves twice"):
        membership.check_tx(twice, 1, AT)


def test_m_of_n_approval_signatures_are_checked(two_of_three: Consortium) -> None:
    park = two_of_three
    membership = park.genesis.membership()
    change = {"certificate": fp(ORCHARD, park), "reason": "keyCompromise"}
    other_change = {"certificate": fp(PACKER, park), "reason": "keyCompromise"}
    wrong = park.approval("park-committee", REVOKE, other_change)
    tx = park.sign_tx(MSB, REVOKE, {"change": change, "approvals": [wrong]})
    with pytest.raises(
        SignatureError, match=r"approval by .*admin@park-committee\) does not verify"
    ):
        membership.check_tx(tx, 1, AT)
    forged = {**park.approval("park-committee", REVOKE, change), "signer": "ef" * 32}
    tx = park.sign_tx(MSB, REVOKE, {"change": change, "approvals": [forged]})
    with pytest.raises(IdentityError, match="unknown approver"):
        membership.check_tx(tx, 1, AT)
    node = park.nodes["park-committee-node"]
    assert node.key is not None
    by_node = sign_approval(node.key, node.fingerprint, park.genesis.chain_id, REVOKE, change)
    tx = park.sign_tx(MSB, REVOKE, {"change": change, "approvals": [by_node]})
    with pytest.raises(NotPermittedError, match="node keys do not approve"):
        membership.check_tx(tx, 1, AT)
    as_tx = park.approval("park-committee", SET_VALIDATORS, change)  # approved another type
    tx = park.sign_tx(MSB, REVOKE, {"change": change, "approvals": [as_tx]})
    with pytest.raises(SignatureError):
        membership.check_tx(tx, 1, AT)


# -- evidence -----------------------------------------------------------------------------
