"""What `parktrace cluster init --compose` adds for docker-compose: one bundle per node
holding only what that node may see, and the settings the compose file substitutes.

    DIR/compose.env                  user the containers run as, resolver host  (0600)
    DIR/resolver.key                 the park's resolver key                    (0600)
    DIR/<node>/node.toml             names the files below, not the consortium
    DIR/<node>/genesis.json          public
    DIR/<node>/node.key, node.pem    its own validator key (0600) and certificate
    DIR/<node>/resolver.key          copy of the resolver key                   (0600)
    DIR/<node>/audit.key, audit.pem  a regulator's node only: its own organisation's
                                     regulator identity, for the cross-node comparison
    DIR/<node>/db.env                the password of its own PostgreSQL         (0600)
    DIR/<node>/state/                sign state: the one place the node writes

Why bundles: a container sees only its bundle (docker-compose.yml mounts `DIR/<node>`),
so no node holds the CA key or another member's private key. Why `compose.env`: the
bundles are the host user's mode-0600 files, so the containers must run as that user to
read them; as root the bundles are handed to the image's own unprivileged user instead.
Everything is written once and kept: a second run changes no password and no key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from ledger.genesis import Genesis
from traceability.codes.sealing import ResolverKey

#: The unprivileged user of the Dockerfile (`useradd --uid`).
IMAGE_UID = 10001
#: Where docker-compose.yml mounts a node's bundle (read-only; STATE below it writable).
MOUNT = "/node"
STATE = "state"
OWN_FILES = {"genesis": "genesis.json", "key": "node.key", "certificate": "node.pem"}
RESOLVER_KEY = "resolver.key"
AUDIT_FILES = ("audit.key", "audit.pem")
DB_ENV = "db.env"
COMPOSE_ENV = "compose.env"
DEFAULT_RESOLVER_HOST = "localhost:8701"


def write(directory: Path, node_ids: Iterable[str]) -> None:
    """Fill in whatever is missing of the bundles of `node_ids` and of compose.env."""
    consortium = directory / "consortium"
    genesis = Genesis.load(consortium / "genesis.json")
    orgs = {v.id: v.org for v, _ in genesis.validators}
    regulators = {org.id for org, _ in genesis.organizations if "regulator" in org.roles}
    resolver = _resolver_key(directory / RESOLVER_KEY)
    for node_id in node_ids:
        org = orgs[node_id]
        bundle = directory / node_id
        (bundle / STATE).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(bundle, 0o700)
        _public(bundle / OWN_FILES["genesis"], (consortium / "genesis.json").read_bytes())
        _public(
            bundle / OWN_FILES["certificate"], _validator_file(consortium, "certs", org, node_id)
        )
        _secret(bundle / OWN_FILES["key"], _validator_file(consortium, "keys", org, node_id))
        _secret(bundle / RESOLVER_KEY, resolver)
        if org in regulators:
            key, cert = regulator_identity(consortium, org)
            _secret(bundle / AUDIT_FILES[0], key.read_bytes())
            _public(bundle / AUDIT_FILES[1], cert.read_bytes())
        password = secrets.token_urlsafe(24)
        _secret(bundle / DB_ENV, f"POSTGRES_PASSWORD={password}\nPGPASSWORD={password}\n".encode())
        _hand_to_image_user(bundle)
    _secret(directory / COMPOSE_ENV, _compose_env().encode())


def regulator_identity(consortium: Path, org: str) -> tuple[Path, Path]:
    """The first user key (and certificate) of a regulator organisation."""
    keys = sorted((consortium / "keys" / "orgs" / org / "users").glob("*.key"))
    if not keys:
        raise FileNotFoundError(f"no user key of regulator {org} in {consortium}")
    return keys[0], consortium / "certs" / "orgs" / org / "users" / f"{keys[0].stem}.pem"


def _validator_file(consortium: Path, kind: str, org: str, node_id: str) -> bytes:
    suffix = ".key" if kind == "keys" else ".pem"
    return (consortium / kind / "orgs" / org / "validators" / f"{node_id}{suffix}").read_bytes()


def _resolver_key(path: Path) -> bytes:
    if not path.exists():
        _secret(path, ResolverKey.generate().text().encode("ascii"))
    return path.read_bytes()


def _compose_env() -> str:
    uid, gid = (IMAGE_UID, IMAGE_UID) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    return (
        "# docker compose --env-file var/compose/compose.env up --build\n"
        f"PARKTRACE_UID={uid}\n"
        f"PARKTRACE_GID={gid}\n"
        f"PARKTRACE_RESOLVER_HOST={DEFAULT_RESOLVER_HOST}\n"
        "PARKTRACE_PARK_PREFIX=\n"
    )


def _hand_to_image_user(bundle: Path) -> None:
    """As root, give the bundle to the image's user: the container never runs as root."""
    if os.geteuid() != 0:
        return
    for path in [bundle, *bundle.rglob("*")]:
        os.chown(path, IMAGE_UID, IMAGE_UID)


def _public(path: Path, data: bytes) -> None:
    if not path.exists():
        path.write_bytes(data)


def _secret(path: Path, data: bytes) -> None:
    """Mode 0600 from the first byte; an existing file is kept."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
