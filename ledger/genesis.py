"""The genesis document: the one file every member trusts, and all a verifier needs.

    {"version": 1,
     "chain_id": "...", "genesis_time": "2026-11-22T08:00:00.000Z",
     "ca_certificate": "-----BEGIN CERTIFICATE-----...",
     "organizations": [{"id", "name", "name_zh", "roles": [...], "certificates": [PEM...],
                        "gs1_prefixes": [...]}],          gs1_prefixes: optional
     "validators": [{"id", "org", "public_key": {"scheme", "key"}, "certificate": PEM}],
     "policy": {"transactions": {...}, "biz_steps": {...}, "unlisted_biz_steps": [...]},
     "membership_approval": {"m": 1, "of": ["<org id or certificate fingerprint>", ...]},
     "rules": {...}}                                     optional: the domain's rule set

`rules` is the domain's business rule set and its parameters (traceability.trust reads
it); the chain only carries it, so that every node judges by the same version, and
hashes it with the rest. A genesis without it has none (and hashes as before).

Parsing is strict (no missing or unknown fields) and checks every certificate against the
CA and its organisation, so a genesis that loads is one the chain can run on. Its hash is
over the canonical (RFC 8785) encoding, so the file's whitespace does not matter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import codec
from .chain import ChainState
from .errors import EncodingError, SchemaError
from .identity import Credential, Organization
from .membership import (
    ApprovalRule,
    Membership,
    org_entry_json,
    parse_org_entry,
    parse_validator_entry,
    validator_entry_json,
)
from .policy import Policy
from .timefmt import parse_time
from .tx import require_keys
from .validators import Validator, ValidatorSet

VERSION = 1
GENESIS_FIELDS = (
    "version",
    "chain_id",
    "genesis_time",
    "ca_certificate",
    "organizations",
    "validators",
    "policy",
    "membership_approval",
)
#: Optional fields: left out of the document (and so of its hash) when absent.
GENESIS_OPTIONAL = ("rules",)
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_GENESIS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time: str
    ca_certificate: str
    organizations: tuple[tuple[Organization, tuple[Credential, ...]], ...]
    validators: tuple[tuple[Validator, Credential], ...]
    policy: Policy
    approval: ApprovalRule
    #: The domain's rule set (opaque to the chain), or None.
    rules: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Genesis:
        """Strictly parse and check a genesis document; errors name the field."""
        present = tuple(k for k in GENESIS_OPTIONAL if isinstance(data, dict) and k in data)
        doc = require_keys(data, GENESIS_FIELDS + present, "genesis")
        rules = doc.get("rules")
        if "rules" in doc and not isinstance(rules, dict):
            raise SchemaError("genesis.rules: expected an object (the domain's rule set)")
        if type(doc["version"]) is not int or doc["version"] != VERSION:
            raise SchemaError(f"genesis.version: expected {VERSION}, got {doc['version']!r}")
        chain_id = doc["chain_id"]
        if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
            raise SchemaError(
                "genesis.chain_id: expected lowercase letters, digits, '.', '_', '-' "
                f"(at most 64), got {chain_id!r}"
            )
        parse_time(doc["genesis_time"], "genesis.genesis_time")
        if not isinstance(doc["ca_certificate"], str):
            raise SchemaError("genesis.ca_certificate: expected a PEM certificate")
        for key in ("organizations", "validators"):
            if not isinstance(doc[key], list) or not doc[key]:
                raise SchemaError(f"genesis.{key}: expected a non-empty list")
        genesis = cls(
            chain_id,
            doc["genesis_time"],
            doc["ca_certificate"],
            tuple(
                parse_org_entry(o, f"genesis.organizations[{i}]")
                for i, o in enumerate(doc["organizations"])
            ),
            tuple(
                parse_validator_entry(v, f"genesis.validators[{i}]")
                for i, v in enumerate(doc["validators"])
            ),
            Policy.from_json(doc["policy"]),
            ApprovalRule.from_json(doc["membership_approval"], "genesis.membership_approval"),
            rules,
        )
        genesis.membership()  # every certificate, role and approver checked now
        return genesis

    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        """Read genesis.json. A missing file raises OSError; bad content a LedgerError."""
        raw = Path(path).read_bytes()
        if len(raw) > MAX_GENESIS_BYTES:
            raise SchemaError(f"genesis is larger than {MAX_GENESIS_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EncodingError(f"not valid JSON ({exc})") from exc
        return cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "ca_certificate": self.ca_certificate,
            "organizations": [org_entry_json(org, creds) for org, creds in self.organizations],
            "validators": [validator_entry_json(v, cred) for v, cred in self.validators],
            "policy": self.policy.to_json(),
            "membership_approval": self.approval.to_json(),
            **({"rules": self.rules} if self.rules is not None else {}),
        }

    def write(self, path: str | Path) -> None:
        """Pretty JSON for people; the hash is over the canonical form anyway."""
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    @property
    def hash(self) -> str:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = codec.digest("genesis", self.to_json()).hex()
            object.__setattr__(self, "_hash", cached)
        return cached

    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(tuple(v for v, _ in self.validators))

    def initial_state(self) -> ChainState:
        return ChainState(
            chain_id=self.chain_id,
            genesis_hash=self.hash,
            genesis_time=self.genesis_time,
            validators=self.validator_set(),
        )

    def membership(self) -> Membership:
        """The membership in force for block 1 (an immutable value, computed once)."""
        cached = self.__dict__.get("_membership")
        if cached is None:
            cached = Membership.create(
                chain_id=self.chain_id,
                ca_certificate=self.ca_certificate,
                organizations=list(self.organizations),
                validators=list(self.validators),
                policy=self.policy,
                approval=self.approval,
            )
            object.__setattr__(self, "_membership", cached)
        return cached

    def organization(self, org_id: str) -> Organization | None:
        return next((org for org, _ in self.organizations if org.id == org_id), None)
