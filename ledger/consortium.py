"""Bootstrapping a consortium: from a TOML description to a root CA, member and validator
keys and certificates, and the genesis document.

`Consortium.write(DIR)` lays the result out so that each owner's secrets sit in one
directory that can be handed over as a whole:

    DIR/
      README.txt                                 this layout, for whoever opens DIR
      genesis.json                               the chain's root of trust (public)
      consortium.toml                            the configuration it was built from
      certs/ca.pem                               consortium root CA certificate
      certs/orgs/<org>/users/<user>.pem          member (user) certificates
      certs/orgs/<org>/validators/<node>.pem     validator node certificates
      keys/ca.key                                CA key: take it offline after init
      keys/orgs/<org>/users/<user>.key           give keys/orgs/<org>/ to <org> only
      keys/orgs/<org>/validators/<node>.key

Key directories are created 0700 and key files 0600 from their first byte; with a
passphrase every key is PKCS#8-encrypted. Bootstrapping generates every key in one
place, so in production run it on an offline machine and move each org's directory to
that org; the ledger itself only ever sees certificates and signatures.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .crypto import PrivateKey, PublicKey
from .errors import IdentityError, SchemaError
from .genesis import VERSION, Genesis
from .identity import (
    Credential,
    Organization,
    create_ca,
    issue_certificate,
    load_certificate,
    parse_name,
    parse_prefixes,
    parse_roles,
    to_pem,
)
from .membership import ApprovalRule, sign_approval
from .policy import Policy
from .timefmt import format_time
from .tx import Transaction

SAMPLE_CONFIG = Path(__file__).resolve().parent / "samples" / "park-consortium.toml"
SAMPLE_SEED = b"parktrace-sample"

#: The layout block of this docstring, written to DIR/README.txt.
LAYOUT = textwrap.dedent("    DIR/\n" + __doc__.split("DIR/\n", 1)[1].split("\n\n", 1)[0])


class ConfigError(SchemaError):
    """The consortium configuration (TOML) is missing something or says something wrong."""

    code = "bad_config"


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class UserConfig:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class OrgConfig:
    organization: Organization
    users: tuple[UserConfig, ...]
    validators: tuple[str, ...]


def _table(data: Any, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a table")
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(extra)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{what}: missing {', '.join(missing)}")
    return data


def _days(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 36500:
        raise ConfigError(f"{what}: expected a number of days from 1 to 36500")
    return value


def _string(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise ConfigError(f"{what}: expected a {'' if empty else 'non-empty '}string")
    return value


@dataclass(frozen=True)
class ConsortiumConfig:
    """What `consortium init` reads: see ledger/samples/park-consortium.toml for every key."""

    chain_id: str
    ca_common_name: str
    ca_organization: str
    ca_days: int
    cert_days: int
    organizations: tuple[OrgConfig, ...]
    policy: Policy
    approval: ApprovalRule
    text: str = field(default="", compare=False)
    #: `[rules]`: the domain's rule set, carried into genesis as it is (optional).
    rules: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: str | Path) -> ConsortiumConfig:
        """Read a TOML file. A missing file raises OSError; bad TOML or content ConfigError."""
        return cls.from_toml(Path(path).read_text(encoding="utf-8"), str(path))

    @classmethod
    def from_toml(cls, text: str, source: str = "consortium.toml") -> ConsortiumConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from exc
        try:
            config = cls.from_dict(data)
        except SchemaError as exc:
            raise ConfigError(f"{source}: {exc.message}") from exc
        return replace(config, text=text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsortiumConfig:
        top = (
            "chain_id",
            "ca",
            "certificates",
            "membership_approval",
            "policy",
            "organizations",
            "rules",
        )
        _table(data, top, ("chain_id", "membership_approval", "policy", "organizations"), "config")
        ca_keys = ("common_name", "organization", "validity_days")
        ca = _table(data.get("ca", {}), ca_keys, (), "[ca]")
        certs = _table(data.get("certificates", {}), ("validity_days",), (), "[certificates]")
        orgs = data["organizations"]
        if not isinstance(orgs, list) or not orgs:
            raise ConfigError("[[organizations]]: list at least one organisation")
        parsed = tuple(_org_config(o, i) for i, o in enumerate(orgs))
        config = cls(
            chain_id=_string(data["chain_id"], "chain_id"),
            ca_common_name=_string(
                ca.get("common_name", "ParkTrace Consortium Root CA"), "ca.common_name"
            ),
            ca_organization=_string(ca.get("organization", "ParkTrace"), "ca.organization"),
            ca_days=_days(ca.get("validity_days", 3650), "ca.validity_days"),
            cert_days=_days(certs.get("validity_days", 730), "certificates.validity_days"),
            organizations=parsed,
            policy=Policy.from_json(data["policy"]),
            approval=ApprovalRule.from_json(data["membership_approval"], "membership_approval"),
            rules=_rules(data.get("rules")),
        )
        config._check()
        return config

    def _check(self) -> None:
        ids = [o.organization.id for o in self.organizations]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigError(f"organisation id(s) listed twice: {', '.join(dup)}")
        prefixes = [p for o in self.organizations for p in o.organization.gs1_prefixes]
        dup = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dup:
            raise ConfigError(f"GS1 Company Prefix(es) held by two organisations: {', '.join(dup)}")
        nodes = [v for o in self.organizations for v in o.validators]
        dup = sorted({v for v in nodes if nodes.count(v) > 1})
        if dup:
            raise ConfigError(f"validator id(s) listed twice: {', '.join(dup)}")
        if not nodes:
            raise ConfigError("no organisation runs a validator: list validators = [...]")
        unknown = [e for e in self.approval.of if e not in ids]
        if unknown:
            raise ConfigError(f"membership_approval.of: unknown organisation(s) {unknown}")
        if self.cert_days > self.ca_days:
            raise ConfigError("certificates.validity_days exceeds the CA's validity_days")


def _rules(data: Any) -> dict[str, Any] | None:
    if data is not None and not isinstance(data, dict):
        raise ConfigError("[rules]: expected a table (the domain's rule set)")
    return data


def _org_config(data: Any, index: int) -> OrgConfig:
    what = f"organizations[{index}]"
    keys = ("id", "name", "name_zh", "roles", "users", "validators", "gs1_prefixes")
    obj = _table(data, keys, ("id", "name", "roles"), what)
    org = Organization(
        parse_name(obj["id"], f"{what}.id"),
        _string(obj["name"], f"{what}.name"),
        _string(obj.get("name_zh", ""), f"{what}.name_zh", empty=True),
        parse_roles(obj["roles"], f"{what}.roles"),
        parse_prefixes(obj.get("gs1_prefixes", []), f"{what}.gs1_prefixes"),
    )
    users = []
    raw_users = obj.get("users", ["admin"])
    if not isinstance(raw_users, list):
        raise ConfigError(f"{what}.users: expected a list of names or {{name, roles}} tables")
    for j, user in enumerate(raw_users):
        where = f"{what}.users[{j}]"
        if isinstance(user, str):
            user = {"name": user}
        entry = _table(user, ("name", "roles"), ("name",), where)
        roles = parse_roles(entry.get("roles", list(org.roles)), f"{where}.roles")
        beyond = [r for r in roles if r not in org.roles]
        if beyond:
            raise ConfigError(f"{where}: role(s) {', '.join(beyond)} not held by {org.id!r}")
        users.append(UserConfig(parse_name(entry["name"], f"{where}.name"), roles))
    names = [u.name for u in users]
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}.users: a user name is listed twice")
    nodes = obj.get("validators", [])
    if not isinstance(nodes, list):
        raise ConfigError(f"{what}.validators: expected a list of validator ids")
    nodes = [parse_name(v, f"{what}.validators") for v in nodes]
    if nodes and "validator" not in org.roles:
        raise ConfigError(f"{what}: runs validators but lacks the 'validator' role")
    return OrgConfig(org, tuple(users), tuple(nodes))


# -- the built consortium ------------------------------------------------------------------


@dataclass(frozen=True)
class KeyHolder:
    """One certificate and, where this copy holds it, its private key."""

    org: str
    name: str
    certificate: str
    fingerprint: str
    key: PrivateKey | None = None


class _Keys:
    """Fresh keys and serials, or with a seed deterministic ones (tests, demos)."""

    def __init__(self, seed: bytes | None) -> None:
        self.seed = seed

    def _hash(self, purpose: str, label: str) -> bytes:
        assert self.seed is not None
        return hashlib.sha256(
            b"parktrace/consortium/" + purpose.encode() + b"\0" + self.seed + b"\0" + label.encode()
        ).digest()

    def key(self, label: str) -> PrivateKey:
        if self.seed is None:
            return PrivateKey.generate()
        return PrivateKey.from_seed(self._hash("key", label))

    def serial(self, label: str) -> int | None:
        if self.seed is None:
            return None
        return int.from_bytes(self._hash("serial", label)[:19], "big") | 1


def build_consortium(
    config: ConsortiumConfig, now: datetime | None = None, seed: bytes | None = None
) -> Consortium:
    """Create the CA, every user and validator key and certificate, and genesis, in memory.

    `now` (timezone-aware) is the genesis time and the start of every certificate's
    validity; `seed` makes all keys and serials deterministic (tests only).
    """
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    keys = _Keys(seed)
    ca_key = keys.key("ca")
    ca = create_ca(
        ca_key,
        common_name=config.ca_common_name,
        organization=config.ca_organization,
        not_before=moment,
        days=config.ca_days,
        serial=keys.serial("ca"),
    )

    def issue(label: str, org: str, name: str, roles: tuple[str, ...]) -> KeyHolder:
        key = keys.key(label)
        cert = issue_certificate(
            ca_key,
            ca,
            key.public_key,
            org=org,
            roles=roles,
            common_name=name,
            not_before=moment,
            days=config.cert_days,
            serial=keys.serial(label),
        )
        pem = to_pem(cert)
        return KeyHolder(org, name, pem, Credential.from_pem(pem).fingerprint, key)

    users: dict[tuple[str, str], KeyHolder] = {}
    nodes: dict[str, KeyHolder] = {}
    orgs_json, validators_json = [], []
    for oc in config.organizations:
        org = oc.organization
        for user in oc.users:
            users[(org.id, user.name)] = issue(
                f"user/{org.id}/{user.name}", org.id, user.name, user.roles
            )
        orgs_json.append(
            {
                **org.to_json(),
                "certificates": [users[(org.id, u.name)].certificate for u in oc.users],
            }
        )
        for node in oc.validators:
            holder = issue(f"validator/{node}", org.id, node, ("validator",))
            nodes[node] = holder
            assert holder.key is not None
            validators_json.append(
                {
                    "id": node,
                    "org": org.id,
                    "public_key": holder.key.public_key.to_json(),
                    "certificate": holder.certificate,
                }
            )
    genesis = Genesis.from_json(
        {
            "version": VERSION,
            "chain_id": config.chain_id,
            "genesis_time": format_time(moment),
            "ca_certificate": to_pem(ca),
            "organizations": orgs_json,
            "validators": validators_json,
            "policy": config.policy.to_json(),
            "membership_approval": config.approval.to_json(),
            **({"rules": config.rules} if config.rules is not None else {}),
        }
    )
    return Consortium(
        genesis, ca_key, MappingProxyType(users), MappingProxyType(nodes), config.text
    )


@dataclass(frozen=True)
class Consortium:
    genesis: Genesis
    ca_key: PrivateKey | None
    users: Mapping[tuple[str, str], KeyHolder]  # (org id, user name) -> holder
    nodes: Mapping[str, KeyHolder]  # validator id -> holder
    config_text: str = ""

    # -- lookups ------------------------------------------------------------------------
    def user(self, org_id: str, name: str | None = None) -> KeyHolder:
        """A user of `org_id` (its first one when `name` is None)."""
        for (org, user), holder in self.users.items():
            if org == org_id and (name is None or user == name):
                return holder
        raise KeyError(f"no user {name or '(any)'} of organisation {org_id!r} in this consortium")

    def user_key(self, org_id: str, name: str | None = None) -> tuple[PrivateKey, str]:
        """(private key, certificate fingerprint) of a user, for signing transactions."""
        holder = self.user(org_id, name)
        if holder.key is None:
            raise KeyError(f"this copy of the consortium holds no key for {name}@{org_id}")
        return holder.key, holder.fingerprint

    @property
    def validator_keys(self) -> dict[str, PrivateKey]:
        return {vid: h.key for vid, h in self.nodes.items() if h.key is not None}

    # -- signing helpers ----------------------------------------------------------------
    def sign_tx(
        self,
        org_id: str,
        type: str,
        payload: dict[str, Any],
        timestamp: str | None = None,
        *,
        user: str | None = None,
        nonce: bytes | None = None,
    ) -> Transaction:
        key, fp = self.user_key(org_id, user)
        return Transaction.create(
            key,
            chain_id=self.genesis.chain_id,
            type=type,
            payload=payload,
            signer=fp,
            timestamp=timestamp,
            nonce=nonce,
        )

    def approval(
        self, org_id: str, tx_type: str, change: dict[str, Any], *, user: str | None = None
    ) -> dict[str, Any]:
        key, fp = self.user_key(org_id, user)
        return sign_approval(key, fp, self.genesis.chain_id, tx_type, change)

    def membership_tx(
        self,
        org_id: str,
        tx_type: str,
        change: dict[str, Any],
        *,
        approvers: tuple[str, ...] | list[str] = (),
        timestamp: str | None = None,
        user: str | None = None,
    ) -> Transaction:
        """A membership change signed by a user of `org_id`, approved by users of `approvers`."""
        approvals = [self.approval(a, tx_type, change) for a in approvers]
        payload = {"change": change, "approvals": approvals}
        return self.sign_tx(org_id, tx_type, payload, timestamp, user=user)

    def issue(
        self,
        org_id: str,
        name: str,
        key: PrivateKey | PublicKey,
        *,
        roles: tuple[str, ...] | None = None,
        not_before: datetime | None = None,
        days: int = 730,
    ) -> Credential:
        """A new CA-signed certificate (for add_org, rotate_key, set_validators)."""
        if self.ca_key is None:
            raise IdentityError("this copy of the consortium does not hold the CA key")
        org = self.genesis.organization(org_id)
        ca = load_certificate(self.genesis.ca_certificate)
        public = key.public_key if isinstance(key, PrivateKey) else key
        cert = issue_certificate(
            self.ca_key,
            ca,
            public,
            org=org_id,
            roles=roles or (org.roles if org else ()),
            common_name=name,
            not_before=not_before or ca.not_valid_before_utc,
            days=days,
        )
        return Credential.from_pem(to_pem(cert))

    # -- files --------------------------------------------------------------------------
    def write(
        self, out_dir: str | Path, passphrase: bytes | None = None, *, force: bool = False
    ) -> None:
        """Write the layout above. Refuses a non-empty `out_dir` unless `force`."""
        root = Path(out_dir)
        if root.exists() and not root.is_dir():
            raise FileExistsError(f"{root} exists and is not a directory")
        if root.exists() and any(root.iterdir()):
            if not force:
                raise FileExistsError(f"{root} already exists and is not empty (use --force)")
            for name in ("README.txt", "genesis.json", "consortium.toml"):
                (root / name).unlink(missing_ok=True)
            for name in ("certs", "keys"):
                shutil.rmtree(root / name, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        (root / "README.txt").write_text(
            "ParkTrace consortium directory (parktrace consortium init)\n\n"
            + (LAYOUT if self.config_text else _without_config_line(LAYOUT))
            + "\n\nKey files are mode 0600, key directories 0700.\n",
            encoding="utf-8",
        )
        self.genesis.write(root / "genesis.json")
        if self.config_text:
            (root / "consortium.toml").write_text(self.config_text, encoding="utf-8")
        _public(root / "certs" / "ca.pem", self.genesis.ca_certificate)
        if self.ca_key is not None:
            _private_dir(root, "keys")
            self.ca_key.save(root / "keys" / "ca.key", passphrase)
        for kind, holders in (("users", self.users.values()), ("validators", self.nodes.values())):
            for h in holders:
                _public(root / "certs" / "orgs" / h.org / kind / f"{h.name}.pem", h.certificate)
                if h.key is not None:
                    folder = _private_dir(root, "keys", "orgs", h.org, kind)
                    h.key.save(folder / f"{h.name}.key", passphrase)

    @classmethod
    def load(cls, directory: str | Path, passphrase: bytes | None = None) -> Consortium:
        """Read what `write` wrote; keys this copy does not hold are simply absent."""
        root = Path(directory)
        genesis = Genesis.load(root / "genesis.json")
        ca_path = root / "keys" / "ca.key"
        ca_key = PrivateKey.load(ca_path, passphrase) if ca_path.exists() else None
        found: dict[str, dict[Any, KeyHolder]] = {"users": {}, "validators": {}}
        for kind, index in found.items():
            for pem_path in sorted((root / "certs" / "orgs").glob(f"*/{kind}/*.pem")):
                org, name = pem_path.parent.parent.name, pem_path.stem
                pem = pem_path.read_text(encoding="ascii")
                cred = Credential.from_pem(pem, str(pem_path))
                key_path = root / "keys" / "orgs" / org / kind / f"{name}.key"
                key = PrivateKey.load(key_path, passphrase) if key_path.exists() else None
                if key is not None and key.public_key != cred.public_key:
                    raise IdentityError(f"{key_path} does not match {pem_path}")
                index[(org, name) if kind == "users" else name] = KeyHolder(
                    org, name, pem, cred.fingerprint, key
                )
        config = root / "consortium.toml"
        text = config.read_text(encoding="utf-8") if config.exists() else ""
        return cls(
            genesis,
            ca_key,
            MappingProxyType(found["users"]),
            MappingProxyType(found["validators"]),
            text,
        )

    @classmethod
    def sample(cls, seed: bytes = SAMPLE_SEED, now: datetime | None = None) -> Consortium:
        """The park's sample consortium (ledger/samples/park-consortium.toml) with seeded keys.

        Built once per (seed, now) and process; without `now` its genesis time is just
        before the first call, so transactions stamped with the current time fit in.
        """
        return _sample(seed, now)


@functools.lru_cache(maxsize=16)
def _sample(seed: bytes, now: datetime | None) -> Consortium:
    config = ConsortiumConfig.load(SAMPLE_CONFIG)
    return build_consortium(config, now or datetime.now(UTC) - timedelta(seconds=1), seed)


def _without_config_line(layout: str) -> str:
    """The layout as written when no configuration text is kept (a consortium built from
    data, as `cluster up` does, has no consortium.toml to list)."""
    return "\n".join(line for line in layout.splitlines() if "consortium.toml" not in line)


def _public(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def _private_dir(root: Path, *parts: str) -> Path:
    """Create each level below `root` with mode 0700, whatever the umask."""
    path = root
    for part in parts:
        path = path / part
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path
