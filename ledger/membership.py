"""Who may sign what at a given height: the consortium's membership, replayed along the chain.

`Membership` is an immutable value. Genesis gives the first one; every committed
membership transaction gives the next (`apply`). `check_tx` judges a transaction against
the membership in force before its block, with the block's height and time, and names the
reason for every rejection.

Heights, not wall clocks, decide revocation: a certificate revoked by a transaction in
block h signs validly up to and including block h and is refused from block h + 1. A
certificate added in block h signs from block h + 1. Because members keep these heights,
re-verifying an old transaction against a later membership gives the verdict it had
when it was committed.

Membership changes ("membership.*" transactions) carry
    {"change": {...}, "approvals": [{"signer": <fingerprint>, "signature": {scheme, value}}]}
Each approval signs `approval_message(chain_id, type, change)`. The transaction's own
signer counts as an approval too. The genesis rule {"m": M, "of": [...]} is met when M
entries of "of" (organisation ids or certificate fingerprints) each have an approval
from a valid certificate they match.

`membership.set_prefixes` {"organization": <id>, "gs1_prefixes": [<prefix>, ...]} gives an
organisation its whole new list of GS1 Company Prefixes (the GTINs it may issue codes
for); like a certificate, a prefix granted in block h counts from block h + 1, and one
taken away in block h counts up to and including block h. No prefix is ever held by two
organisations at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography import x509

from . import codec
from .crypto import PrivateKey, PublicKey
from .errors import (
    ChainMismatchError,
    IdentityError,
    NotPermittedError,
    SchemaError,
    SignatureError,
)
from .identity import (
    Credential,
    Organization,
    check_ca,
    check_ca_validity,
    check_issued_by,
    check_validity,
    load_certificate,
    parse_name,
    parse_prefixes,
    parse_roles,
)
from .policy import Policy
from .timefmt import parse_time
from .tx import Transaction, require_keys
from .validators import Validator, ValidatorSet

ADD_ORG = "membership.add_org"
REVOKE = "membership.revoke"
ROTATE_KEY = "membership.rotate_key"
SET_VALIDATORS = "membership.set_validators"
SET_PREFIXES = "membership.set_prefixes"
MEMBERSHIP_TYPES = frozenset({ADD_ORG, REVOKE, ROTATE_KEY, SET_VALIDATORS, SET_PREFIXES})

#: Approvals have their own signing domain: an approval can never pass as a transaction.
APPROVAL_DOMAIN = "approval"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def approval_message(chain_id: str, tx_type: str, change: dict[str, Any]) -> bytes:
    """The bytes an approver signs: this change, of this type, on this chain."""
    body = {"chain_id": chain_id, "type": tx_type, "change": change}
    return codec.domain_bytes(APPROVAL_DOMAIN, body)


def sign_approval(
    key: PrivateKey, signer: str, chain_id: str, tx_type: str, change: dict[str, Any]
) -> dict[str, Any]:
    """An approval entry for a membership change's payload, signed locally."""
    signature = key.sign(approval_message(chain_id, tx_type, change))
    return {
        "signer": signer,
        "signature": {"scheme": key.scheme, "value": codec.b64encode(signature)},
    }


def _fingerprint(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise SchemaError(f"{what}: expected a certificate fingerprint (64 lowercase hex digits)")
    return value


def _text(value: Any, what: str, *, empty: bool = False, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit or (not value and not empty):
        raise SchemaError(f"{what}: expected a {'' if empty else 'non-empty '}string")
    return value


# -- shapes shared by genesis and membership transactions ----------------------------------

ORG_FIELDS = ("id", "name", "name_zh", "roles", "certificates")
#: Optional in an organisation entry (genesis files from before it have none).
ORG_OPTIONAL = ("gs1_prefixes",)
VALIDATOR_FIELDS = ("id", "org", "public_key", "certificate")


def parse_org_entry(data: Any, what: str) -> tuple[Organization, tuple[Credential, ...]]:
    """{"id", "name", "name_zh", "roles", "certificates": [PEM...], "gs1_prefixes"?: [...]}."""
    present = tuple(k for k in ORG_OPTIONAL if isinstance(data, dict) and k in data)
    obj = require_keys(data, ORG_FIELDS + present, what)
    org = Organization(
        parse_name(obj["id"], f"{what}.id"),
        _text(obj["name"], f"{what}.name"),
        _text(obj["name_zh"], f"{what}.name_zh", empty=True),
        parse_roles(obj["roles"], f"{what}.roles"),
        parse_prefixes(obj.get("gs1_prefixes", []), f"{what}.gs1_prefixes"),
    )
    certs = obj["certificates"]
    if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
        raise SchemaError(f"{what}.certificates: expected a list of PEM certificates")
    creds = tuple(
        Credential.from_pem(pem, f"{what}.certificates[{i}]") for i, pem in enumerate(certs)
    )
    return org, creds


def org_entry_json(org: Organization, creds: tuple[Credential, ...]) -> dict[str, Any]:
    return {**org.to_json(), "certificates": [c.pem for c in creds]}


def parse_validator_entry(data: Any, what: str) -> tuple[Validator, Credential]:
    """{"id", "org", "public_key": {scheme, key}, "certificate": PEM}."""
    obj = require_keys(data, VALIDATOR_FIELDS, what)
    validator = Validator(
        parse_name(obj["id"], f"{what}.id"),
        PublicKey.from_json(obj["public_key"]),
        parse_name(obj["org"], f"{what}.org"),
    )
    cert = _text(obj["certificate"], f"{what}.certificate", limit=16384)
    return validator, Credential.from_pem(cert, f"{what}.certificate")


def validator_entry_json(validator: Validator, cred: Credential) -> dict[str, Any]:
    return {**validator.to_json(), "certificate": cred.pem}


@dataclass(frozen=True)
class ApprovalRule:
    """M of N: `m` entries of `of` (organisation ids or certificate fingerprints) must approve."""

    m: int
    of: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any, what: str = "membership_approval") -> ApprovalRule:
        obj = require_keys(data, ("m", "of"), what)
        of = obj["of"]
        if not isinstance(of, list) or not of or not all(isinstance(e, str) for e in of):
            raise SchemaError(f"{what}.of: expected a non-empty list of org ids or fingerprints")
        if len(set(of)) != len(of):
            raise SchemaError(f"{what}.of: repeats an entry")
        m = obj["m"]
        if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= len(of):
            raise SchemaError(f"{what}.m: expected an integer from 1 to {len(of)}")
        return cls(m, tuple(of))

    def to_json(self) -> dict[str, Any]:
        return {"m": self.m, "of": list(self.of)}

    @staticmethod
    def matches(entry: str, member: Member) -> bool:
        return entry in (member.fingerprint, member.org)

    def describe(self) -> str:
        return f"{self.m} of [{', '.join(e if len(e) < 64 else e[:16] + '…' for e in self.of)}]"


@dataclass(frozen=True)
class Member:
    """A registered certificate and the heights that bound its use."""

    credential: Credential
    added_height: int = 0
    revoked_height: int | None = None
    revocation_reason: str = ""
    node: bool = False  # a validator node's certificate: online, so it never approves

    @property
    def fingerprint(self) -> str:
        return self.credential.fingerprint

    @property
    def org(self) -> str:
        return self.credential.org

    @property
    def roles(self) -> tuple[str, ...]:
        return self.credential.roles

    @property
    def public_key(self) -> PublicKey:
        return self.credential.public_key


@dataclass(frozen=True)
class PrefixGrant:
    """A GS1 Company Prefix held by an organisation from block `since` + 1 (genesis: 0)
    up to and including block `until` (None: still held)."""

    prefix: str
    org: str
    since: int
    until: int | None = None

    def held_at(self, height: int) -> bool:
        return self.since < height and (self.until is None or height <= self.until)


def _at(time: str | datetime) -> datetime:
    return time if isinstance(time, datetime) else parse_time(time, "block time")


@dataclass(frozen=True)
class Membership:
    chain_id: str
    ca: x509.Certificate
    organizations: Mapping[str, Organization]
    members: Mapping[str, Member]  # by certificate fingerprint; validators' too
    validators: ValidatorSet
    validator_certs: Mapping[str, str]  # validator id -> certificate fingerprint
    policy: Policy
    approval: ApprovalRule
    #: Every GS1 Company Prefix grant of the chain so far, with its heights.
    prefix_grants: tuple[PrefixGrant, ...] = ()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        *,
        chain_id: str,
        ca_certificate: str,
        organizations: list[tuple[Organization, tuple[Credential, ...]]],
        validators: list[tuple[Validator, Credential]],
        policy: Policy,
        approval: ApprovalRule,
    ) -> Membership:
        """The genesis membership, every certificate checked against the CA and its org."""
        ca = load_certificate(ca_certificate, "ca_certificate")
        check_ca(ca)
        orgs: dict[str, Organization] = {}
        members: dict[str, Member] = {}
        for org, creds in organizations:
            if org.id in orgs:
                raise SchemaError(f"organizations: {org.id!r} is listed twice")
            orgs[org.id] = org
            for cred in creds:
                _require_org(cred, org.id)
                _admit(ca, orgs, members, cred, 0)
        base = cls(
            chain_id,
            ca,
            MappingProxyType(orgs),
            MappingProxyType(members),
            ValidatorSet(tuple(v for v, _ in validators)),
            MappingProxyType({}),
            policy,
            approval,
        )
        state = base._with_validators(validators, 0)
        for org, _ in organizations:
            state = state._grant(org.id, org.gs1_prefixes, 0, f"organizations: {org.id!r}")
        for entry in approval.of:
            if entry not in orgs and entry not in members:
                raise SchemaError(
                    f"membership_approval.of: {entry!r} is neither an organisation id "
                    "nor a member certificate fingerprint"
                )
        state._require_satisfiable("genesis")
        return state

    # -- judging transactions -----------------------------------------------------------
    def check_tx(self, tx: Transaction, height: int, time: str | datetime) -> Member:
        """The signer, if `tx` may be committed in block `height` at block time `time`.

        Raises IdentityError (unknown signer, other CA, expired, not yet valid, revoked),
        SignatureError (not signed by the certificate's key), NotPermittedError (role or
        bizStep outside the policy, missing approvals), SchemaError (malformed change).
        """
        if tx.chain_id != self.chain_id:
            raise ChainMismatchError(f"transaction is for chain {tx.chain_id!r}")
        at = _at(time)
        signer = self._usable(tx.signer, height, at, "signer")
        try:
            tx.verify_signature(signer.public_key)
        except SignatureError as exc:
            raise SignatureError(
                f"{exc.message}: it was not made by the key of {signer.credential.describe()}"
            ) from exc
        who = f"{signer.credential.common_name}@{signer.org}"
        self.policy.check(self._policy_type(tx.type), tx.payload, signer.roles, who)
        if tx.type in MEMBERSHIP_TYPES:
            self._next(tx, height)  # the change must make sense in this state
            self._check_approvals(tx, signer, height, at)
        return signer

    def check_approved(
        self, tx: Transaction, height: int, time: str | datetime, rule: ApprovalRule
    ) -> None:
        """Raise unless `tx` (payload {"change", "approvals"}) carries the approvals `rule`
        asks for: the M-of-N check of membership changes, for other governed changes (the
        domain's plot registrations and rule sets) under their own rule."""
        require_keys(tx.payload, ("change", "approvals"), "payload")
        at = _at(time)
        signer = self._usable(tx.signer, height, at, "signer")
        self._check_approvals(tx, signer, height, at, rule)

    def _policy_type(self, tx_type: str) -> str:
        """The write-policy entry that governs `tx_type`. A policy written before prefix
        changes existed lets whoever may add an organisation change its prefixes."""
        if tx_type == SET_PREFIXES and SET_PREFIXES not in self.policy.transactions:
            return ADD_ORG
        return tx_type

    def apply(self, tx: Transaction, height: int) -> Membership:
        """The membership after committing `tx` (already checked) in block `height`."""
        if tx.type not in MEMBERSHIP_TYPES:
            return self
        return self._next(tx, height)

    def member(self, fingerprint: str) -> Member | None:
        return self.members.get(fingerprint)

    def prefix_owner(self, digits: str, height: int) -> PrefixGrant | None:
        """The grant of the longest prefix of `digits` held at block `height`, if any."""
        held = [g for g in self.prefix_grants if digits.startswith(g.prefix) and g.held_at(height)]
        return max(held, key=lambda g: len(g.prefix), default=None)

    def prefixes_declared(self, height: int) -> bool:
        """Whether any prefix was granted before block `height`: a chain whose genesis
        predates prefixes has none until a membership.set_prefixes commits."""
        return any(g.since < height for g in self.prefix_grants)

    def _usable(self, fingerprint: str, height: int, at: datetime, what: str) -> Member:
        member = self.members.get(fingerprint)
        if member is None:
            raise IdentityError(
                f"unknown {what}: no certificate with fingerprint {fingerprint[:16]}… "
                "is registered in this consortium"
            )
        desc = member.credential.describe()
        if height <= member.added_height:
            raise IdentityError(
                f"{what} {desc} joined at height {member.added_height}; "
                f"it signs from height {member.added_height + 1}, not {height}"
            )
        self._chained(member)
        try:
            check_validity(member.credential, at)
            check_ca_validity(self.ca, at)
        except IdentityError as exc:
            raise IdentityError(f"{what} {exc.message}") from exc
        if member.revoked_height is not None and height > member.revoked_height:
            raise IdentityError(
                f"{what} {desc} was revoked at height {member.revoked_height} "
                f"({member.revocation_reason}); it signs nothing from height "
                f"{member.revoked_height + 1}, this is height {height}"
            )
        return member

    def _chained(self, member: Member) -> None:
        """Check the certificate chains to this membership's CA (once per value)."""
        checked: set[str] = self.__dict__.setdefault("_chained_ok", set())
        if member.fingerprint not in checked:
            check_issued_by(member.credential, self.ca)
            checked.add(member.fingerprint)

    def _check_approvals(
        self,
        tx: Transaction,
        signer: Member,
        height: int,
        at: datetime,
        rule: ApprovalRule | None = None,
    ) -> None:
        approvals = tx.payload["approvals"]
        if not isinstance(approvals, list):
            raise SchemaError("payload.approvals: expected a list")
        message = approval_message(self.chain_id, tx.type, tx.payload["change"])
        approvers = [] if signer.node else [signer]
        seen: set[str] = set()
        for i, item in enumerate(approvals):
            what = f"payload.approvals[{i}]"
            obj = require_keys(item, ("signer", "signature"), what)
            fp = _fingerprint(obj["signer"], f"{what}.signer")
            if fp in seen:
                raise SchemaError(f"{what}: {fp[:16]}… approves twice")
            seen.add(fp)
            sig = require_keys(obj["signature"], ("scheme", "value"), f"{what}.signature")
            member = self._usable(fp, height, at, "approver")
            if member.node:
                raise NotPermittedError(
                    f"{member.credential.describe()} is a validator node's certificate; "
                    "node keys do not approve membership changes"
                )
            value = codec.b64decode(sig["value"], field=f"{what}.signature.value")
            if sig["scheme"] != member.public_key.scheme or not member.public_key.verify(
                value, message
            ):
                raise SignatureError(
                    f"approval by {member.credential.describe()} does not verify "
                    f"for this {tx.type} change"
                )
            approvers.append(member)
        rule = rule or self.approval
        met = [e for e in rule.of if any(rule.matches(e, a) for a in approvers)]
        if len(met) < rule.m:
            raise NotPermittedError(
                f"{tx.type} needs approval by {rule.describe()}; "
                f"approved by {len(met)}: {', '.join(met) or 'none'}"
            )
        if tx.type == ROTATE_KEY:
            old = tx.payload["change"]["certificate"]
            if tx.signer != old and not any(rule.matches(e, signer) for e in rule.of):
                raise NotPermittedError(
                    "a key rotation is signed by the certificate it replaces or by an approver"
                )

    def _require_satisfiable(self, after: str) -> None:
        """Refuse a state in which no M approvers could ever be found again."""
        rule = self.approval
        live = [m for m in self.members.values() if m.revoked_height is None and not m.node]
        possible = [e for e in rule.of if any(rule.matches(e, m) for m in live)]
        if len(possible) < rule.m:
            raise NotPermittedError(
                f"after {after} the membership approval rule ({rule.describe()}) "
                f"could never be met: only {len(possible)} approver(s) keep a valid certificate"
            )

    # -- internals: changes -------------------------------------------------------------
    def _next(self, tx: Transaction, height: int) -> Membership:
        payload = require_keys(tx.payload, ("change", "approvals"), "payload")
        change = payload["change"]
        if tx.type == ADD_ORG:
            return self._add_org(change, height)
        if tx.type == REVOKE:
            return self._revoke(change, height)
        if tx.type == ROTATE_KEY:
            return self._rotate_key(change, height)
        if tx.type == SET_PREFIXES:
            return self._set_prefixes(change, height)
        return self._set_validators(change, height)

    def _add_org(self, change: Any, height: int) -> Membership:
        obj = require_keys(change, ("organization",), "change")
        org, creds = parse_org_entry(obj["organization"], "change.organization")
        if org.id in self.organizations:
            raise NotPermittedError(f"organisation {org.id!r} is already a member")
        if not creds:
            raise SchemaError("change.organization.certificates: add at least one certificate")
        orgs = {**self.organizations, org.id: org}
        members = dict(self.members)
        for cred in creds:
            _require_org(cred, org.id)
            _admit(self.ca, orgs, members, cred, height)
        state = replace(
            self, organizations=MappingProxyType(orgs), members=MappingProxyType(members)
        )
        return state._grant(org.id, org.gs1_prefixes, height, "change.organization")

    def _set_prefixes(self, change: Any, height: int) -> Membership:
        obj = require_keys(change, ("organization", "gs1_prefixes"), "change")
        org_id = parse_name(obj["organization"], "change.organization")
        org = self.organizations.get(org_id)
        if org is None:
            raise NotPermittedError(f"organisation {org_id!r} is not a member")
        wanted = parse_prefixes(obj["gs1_prefixes"], "change.gs1_prefixes")
        if sorted(wanted) == sorted(org.gs1_prefixes):
            raise NotPermittedError(f"organisation {org_id!r} already holds exactly these prefixes")
        kept = set(wanted)
        grants = tuple(
            replace(g, until=height)
            if g.org == org_id and g.until is None and g.prefix not in kept
            else g
            for g in self.prefix_grants
        )
        orgs = {**self.organizations, org_id: replace(org, gs1_prefixes=wanted)}
        state = replace(self, organizations=MappingProxyType(orgs), prefix_grants=grants)
        added = tuple(p for p in wanted if p not in org.gs1_prefixes)
        return state._grant(org_id, added, height, "change.gs1_prefixes")

    def _grant(self, org_id: str, prefixes: tuple[str, ...], height: int, what: str) -> Membership:
        """Grant `prefixes` to `org_id` in block `height`; refuse one another org holds."""
        if not prefixes:
            return self
        for prefix in prefixes:
            holder = next(
                (g for g in self.prefix_grants if g.prefix == prefix and g.until is None), None
            )
            if holder is not None and holder.org != org_id:
                raise NotPermittedError(
                    f"{what}: GS1 Company Prefix {prefix} is held by organisation "
                    f"{holder.org!r}; take it from them first"
                )
        new = tuple(PrefixGrant(p, org_id, height) for p in prefixes)
        return replace(self, prefix_grants=self.prefix_grants + new)

    def _revocable(self, fingerprint: str, action: str) -> Member:
        member = self.members.get(fingerprint)
        if member is None:
            raise IdentityError(f"cannot {action} {fingerprint[:16]}…: no such certificate")
        if member.revoked_height is not None:
            raise NotPermittedError(
                f"cannot {action} {member.credential.describe()}: "
                f"already revoked at height {member.revoked_height}"
            )
        for vid, fp in self.validator_certs.items():
            if fp == fingerprint:
                raise NotPermittedError(
                    f"cannot {action} {member.credential.describe()}: it is validator {vid!r}'s; "
                    "change the validator set with membership.set_validators first"
                )
        return member

    def _revoke(self, change: Any, height: int) -> Membership:
        obj = require_keys(change, ("certificate", "reason"), "change")
        fp = _fingerprint(obj["certificate"], "change.certificate")
        reason = _text(obj["reason"], "change.reason")
        member = self._revocable(fp, "revoke")
        members = {
            **self.members,
            fp: replace(member, revoked_height=height, revocation_reason=reason),
        }
        state = replace(self, members=MappingProxyType(members))
        state._require_satisfiable(f"revoking {member.credential.describe()}")
        return state

    def _rotate_key(self, change: Any, height: int) -> Membership:
        obj = require_keys(change, ("certificate", "new_certificate"), "change")
        fp = _fingerprint(obj["certificate"], "change.certificate")
        old = self._revocable(fp, "rotate")
        pem = _text(obj["new_certificate"], "change.new_certificate", limit=16384)
        new = Credential.from_pem(pem, "change.new_certificate")
        same = (old.org, sorted(old.roles), old.credential.common_name)
        if (new.org, sorted(new.roles), new.common_name) != same:
            raise NotPermittedError(
                "a rotated certificate keeps its holder: same O, OU roles and CN as "
                f"{old.credential.describe()}"
            )
        members = dict(self.members)
        members[fp] = replace(
            old, revoked_height=height, revocation_reason=f"superseded by {new.fingerprint[:16]}…"
        )
        _admit(self.ca, self.organizations, members, new, height)
        of = tuple(new.fingerprint if e == fp else e for e in self.approval.of)
        return replace(
            self, members=MappingProxyType(members), approval=replace(self.approval, of=of)
        )

    def _set_validators(self, change: Any, height: int) -> Membership:
        obj = require_keys(change, ("previous", "validators"), "change")
        if obj["previous"] != self.validators.hash():
            raise NotPermittedError(
                "change.previous does not name the current validator set "
                f"({self.validators.hash()[:16]}…): the change is stale or replayed"
            )
        entries = obj["validators"]
        if not isinstance(entries, list) or not entries:
            raise SchemaError("change.validators: expected a non-empty list")
        parsed = [
            parse_validator_entry(e, f"change.validators[{i}]") for i, e in enumerate(entries)
        ]
        return self._with_validators(parsed, height)

    def _with_validators(
        self, entries: list[tuple[Validator, Credential]], height: int
    ) -> Membership:
        members = dict(self.members)
        certs: dict[str, str] = {}
        for validator, cred in entries:
            what = f"validator {validator.id!r}"
            org = self.organizations.get(validator.org)
            if org is None:
                raise SchemaError(f"{what}: unknown organisation {validator.org!r}")
            if "validator" not in org.roles or "validator" not in cred.roles:
                raise NotPermittedError(
                    f"{what}: organisation and certificate must both hold the validator role"
                )
            if cred.org != validator.org:
                raise IdentityError(f"{what}: {cred.describe()} belongs to {cred.org!r}")
            if cred.public_key != validator.public_key:
                raise IdentityError(f"{what}: public_key differs from its certificate's key")
            known = members.get(cred.fingerprint)
            if known is None:
                _admit(self.ca, self.organizations, members, cred, height, node=True)
            elif self.validator_certs.get(validator.id) != cred.fingerprint:
                raise NotPermittedError(f"{what}: {cred.describe()} is already registered")
            elif known.revoked_height is not None:
                raise NotPermittedError(f"{what}: {cred.describe()} is revoked")
            certs[validator.id] = cred.fingerprint
        return replace(
            self,
            members=MappingProxyType(members),
            validators=ValidatorSet(tuple(v for v, _ in entries)),
            validator_certs=MappingProxyType(certs),
        )


def _require_org(cred: Credential, org_id: str) -> None:
    if cred.org != org_id:
        raise IdentityError(
            f"{cred.describe()} is listed under organisation {org_id!r} but its subject O "
            f"names {cred.org!r}"
        )


def _admit(
    ca: x509.Certificate,
    orgs: Mapping[str, Organization],
    members: dict[str, Member],
    cred: Credential,
    height: int,
    *,
    node: bool = False,
) -> None:
    """Register a certificate: issued by the CA, for a known org, within the org's roles."""
    check_issued_by(cred, ca)
    org = orgs.get(cred.org)
    if org is None:
        raise IdentityError(f"{cred.describe()} names organisation {cred.org!r}, not a member")
    beyond = [r for r in cred.roles if r not in org.roles]
    if beyond:
        raise IdentityError(
            f"{cred.describe()} claims role(s) {', '.join(beyond)} that organisation "
            f"{org.id!r} does not hold ({', '.join(org.roles)})"
        )
    if cred.fingerprint in members:
        raise IdentityError(f"{cred.describe()} is registered twice")
    members[cred.fingerprint] = Member(cred, added_height=height, node=node)
