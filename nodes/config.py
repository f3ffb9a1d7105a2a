"""A node's configuration file (`node.toml`): who it is, where its keys, store and peers
are, and how it batches blocks. Paths are relative to the file's own directory.

    [node]
    id = "park-committee-node"               # a validator id from genesis
    consortium = "../consortium"             # directory written by `consortium init`
    # …or, for a node given only its own files (a compose node bundle), instead of it:
    # genesis = "genesis.json"   key = "node.key"   certificate = "node.pem"
    db = "sqlite:///node.db"                 # or postgresql://user@host/db
    data_dir = "."                           # sign state, logs
    key_passphrase_env = ""                  # env var holding the key passphrase, if any

    [network]
    listen = "127.0.0.1:26601"
    [network.peers]
    "testing-centre-node" = "127.0.0.1:26602"

    [api]
    listen = "127.0.0.1:8601"
    max_connections = 1000  # open client connections; more are answered 503 and closed
    header_timeout = 10.0   # seconds a connection has to send a request head (slowloris)
    body_timeout = 60.0     # seconds a request has to send its whole body
    keep_alive = 5.0        # an idle connection is closed this long after a response
    max_body_bytes = 1048576        # any request body…
    max_batch_bytes = 8388608       # …but /v1/transactions/batch
    max_document_bytes = 33554432   # …and /capture (EPCIS documents)
    large_bodies = 4        # bodies above max_body_bytes read at once; more get 503
    rate = 100.0            # requests per second per client address (0: no limit)…
    burst = 500             # …with bursts of this many
    descriptor_reserve = 128  # file descriptors kept free of clients (store, sign state)
    # where clients reach this API, when not at its listen address (a proxy, a DNS
    # name, a container port mapping): request signatures must name one of these or
    # the listen address (docs/api.md)
    public_urls = ["https://node-a.park.example"]

    [capture]
    # organisations whose `/capture` this node signs, with a certificate they delegated to
    # it (their user in the consortium directory: "org" for its first user, "org/user"),
    # so that a plain EPCIS client of theirs needs only HTTP Message Signatures
    signers = ["gannan-orchard-coop", "wenshan-growers/admin"]

    [blocks]
    max_txs = 2000          # a block takes at most this many transactions
    batch_ms = 100          # a proposer waits at most this long for a fuller block
    idle_ms = 10000         # with nothing to commit, a heartbeat block this often

    [consensus]
    timeout_propose = 3.0   # any field of nodes.consensus.config.Config
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.errors import SchemaError

from .consensus.config import Config as ConsensusConfig


class ConfigError(SchemaError):
    code = "bad_config"


def _address(value: Any, what: str) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{what}: expected host:port, got {value!r}")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{what}: bad port in {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class BlockConfig:
    max_txs: int = 2000
    batch_ms: int = 100
    idle_ms: int = 10_000


@dataclass(frozen=True)
class ApiLimits:
    """What one client may cost the node's HTTP API: enforced at the edge (api/edge/),
    before a request reaches a route, so no client can starve the consensus loop that
    shares the process."""

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive: float = 5.0
    max_body_bytes: int = 1024 * 1024
    max_batch_bytes: int = 8 * 1024 * 1024
    max_document_bytes: int = 32 * 1024 * 1024
    large_bodies: int = 4
    rate: float = 100.0
    burst: int = 500
    descriptor_reserve: int = 128


@dataclass(frozen=True)
class NodeConfig:
    id: str
    #: The whole consortium directory; None for a node given only its own files.
    consortium: Path | None
    db: str
    data_dir: Path
    listen: tuple[str, int]
    peers: dict[str, tuple[str, int]]
    api_listen: tuple[str, int]
    #: Base URLs clients reach the API at besides its listen address.
    public_urls: tuple[str, ...] = ()
    #: "org" or "org/user": whose EPCIS captures this node signs (a delegated certificate
    #: in the consortium directory).
    capture_signers: tuple[str, ...] = ()
    blocks: BlockConfig = field(default_factory=BlockConfig)
    api: ApiLimits = field(default_factory=ApiLimits)
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    key_passphrase_env: str = ""
    source: Path | None = None
    #: Explicit files; each one unset is found in `consortium` instead.
    genesis: Path | None = None
    key: Path | None = None
    certificate: Path | None = None

    @property
    def genesis_path(self) -> Path:
        return self.genesis or self._in_consortium("genesis.json")

    def key_path(self, org: str) -> Path:
        """The node's private key; `org` (its organisation in genesis) locates it in a
        consortium directory."""
        return self.key or self._in_consortium("keys", "orgs", org, "validators", f"{self.id}.key")

    def certificate_path(self, org: str) -> Path:
        return self.certificate or self._in_consortium(
            "certs", "orgs", org, "validators", f"{self.id}.pem"
        )

    def _in_consortium(self, *parts: str) -> Path:
        if self.consortium is None:  # from_dict never builds such a config
            raise ConfigError("[node] consortium is not set")
        return self.consortium.joinpath(*parts)

    @property
    def key_passphrase(self) -> bytes | None:
        if not self.key_passphrase_env:
            return None
        value = os.environ.get(self.key_passphrase_env)
        if value is None:
            raise ConfigError(f"environment variable {self.key_passphrase_env} is not set")
        return value.encode()

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, path.parent.resolve(), source=path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path, source: Path | None = None) -> NodeConfig:
        node = data.get("node")
        if not isinstance(node, dict):
            raise ConfigError("missing [node] table")
        for key in ("id", "db"):
            if not isinstance(node.get(key), str) or not node[key]:
                raise ConfigError(f"[node] {key}: expected a non-empty string")
        files = {key: _path(node, key, base) for key in (*OWN_FILES, "consortium")}
        if files["consortium"] is None and None in (files[key] for key in OWN_FILES):
            raise ConfigError(
                f"[node] needs consortium, or all of {', '.join(OWN_FILES)} (a node bundle)"
            )
        network = data.get("network", {})
        peers_raw = network.get("peers", {})
        if not isinstance(peers_raw, dict):
            raise ConfigError('[network.peers]: expected a table of id = "host:port"')
        db = node["db"]
        if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
            db = f"sqlite:///{(base / db[len('sqlite:///') :]).resolve()}"
        blocks = data.get("blocks", {})
        consensus = data.get("consensus", {})
        api = data.get("api", {})
        if not isinstance(api, dict):
            raise ConfigError("[api]: expected a table")
        signers = _capture_signers(data.get("capture", {}))
        if signers and files["consortium"] is None:
            raise ConfigError("[capture] signers are read from the consortium directory: set it")
        return cls(
            id=node["id"],
            consortium=files["consortium"],
            db=db,
            data_dir=(base / node.get("data_dir", ".")).resolve(),
            listen=_address(network.get("listen", "127.0.0.1:26601"), "[network] listen"),
            peers={pid: _address(a, f"[network.peers] {pid}") for pid, a in peers_raw.items()},
            api_listen=_address(api.get("listen", "127.0.0.1:8601"), "[api] listen"),
            public_urls=_urls(api.get("public_urls", []), "[api] public_urls"),
            capture_signers=signers,
            blocks=_dataclass(BlockConfig, blocks, "[blocks]"),
            api=_dataclass(ApiLimits, _limits(api), "[api]", positive=True),
            consensus=_dataclass(ConsensusConfig, consensus, "[consensus]"),
            key_passphrase_env=node.get("key_passphrase_env", ""),
            source=source,
            genesis=files["genesis"],
            key=files["key"],
            certificate=files["certificate"],
        )


#: What a node reads of the consortium: enough to run without the rest of it.
OWN_FILES = ("genesis", "key", "certificate")


def _urls(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{what}: expected a list of URLs, e.g. ["https://node-a.example"]')
    for url in value:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{what}: expected http(s)://host[:port], got {url!r}")
    return tuple(value)


def _capture_signers(capture: Any) -> tuple[str, ...]:
    if not isinstance(capture, dict) or set(capture) - {"signers"}:
        raise ConfigError('[capture]: expected a table with only signers = ["org", "org/user"]')
    signers = capture.get("signers", [])
    if not isinstance(signers, list) or not all(
        isinstance(s, str) and s.strip("/") and s.count("/") <= 1 for s in signers
    ):
        raise ConfigError('[capture] signers: expected a list of "org" or "org/user"')
    return tuple(signers)


def _limits(api: dict[str, Any]) -> dict[str, Any]:
    """The [api] keys that are limits (everything but where the API is)."""
    return {k: v for k, v in api.items() if k not in ("listen", "public_urls")}


def _path(node: dict[str, Any], key: str, base: Path) -> Path | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[node] {key}: expected a non-empty path")
    return (base / value).resolve()


def _dataclass(kind: type, values: Any, what: str, *, positive: bool = False) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{what}: expected a table")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}")
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{what} {key}: expected a number")
        if positive and value < 0:
            raise ConfigError(f"{what} {key}: expected a number >= 0")
    return kind(**values)


def render(
    *,
    node_id: str,
    consortium: str | None = None,
    db: str,
    listen: str,
    peers: dict[str, str],
    api_listen: str,
    public_urls: tuple[str, ...] = (),
    capture_signers: tuple[str, ...] = (),
    blocks: BlockConfig | None = None,
    consensus: dict[str, float] | None = None,
    own_files: dict[str, str] | None = None,
    data_dir: str = ".",
) -> str:
    """The text of a node.toml (what `cluster up` writes and docker-compose mounts).
    `own_files` (genesis, key, certificate -> path) instead of `consortium` for a node
    that holds only its own files."""
    blocks = blocks or BlockConfig()
    capture = ["[capture]", f"signers = {json.dumps(list(capture_signers))}", ""]
    capture = capture if capture_signers else []
    where = [f'consortium = "{consortium}"'] if consortium is not None else []
    where += [f'{key} = "{path}"' for key, path in (own_files or {}).items()]
    lines = [
        "[node]",
        f'id = "{node_id}"',
        *where,
        f'db = "{db}"',
        f'data_dir = "{data_dir}"',
        "",
        "[network]",
        f'listen = "{listen}"',
        "",
        "[network.peers]",
        *[f'"{pid}" = "{addr}"' for pid, addr in sorted(peers.items())],
        "",
        "[api]",
        f'listen = "{api_listen}"',
        *([f"public_urls = {json.dumps(list(public_urls))}"] if public_urls else []),
        "",
        *(
            ["[capture]", f"signers = {json.dumps(list(capture_signers))}", ""]
            if capture_signers
            else []
        ),
        "[blocks]",
        f"max_txs = {blocks.max_txs}",
        f"batch_ms = {blocks.batch_ms}",
        f"idle_ms = {blocks.idle_ms}",
    ]
    if consensus:
        lines += ["", "[consensus]", *[f"{k} = {v}" for k, v in sorted(consensus.items())]]
    return "\n".join(lines) + "\n"
