"""A local consortium as separate processes: `parktrace cluster up / status / down`.

Layout of a cluster directory:

    DIR/consortium/          CA, certificates, keys, genesis.json (consortium init)
    DIR/<node-id>/node.toml  that node's configuration (what `node run --config` reads)
    DIR/<node-id>/node.db    its SQLite store;  signstate.json, node.log, node.pid
    DIR/cluster.json         node ids, addresses and API URLs
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools import compose_bundle
from ledger.consortium import SAMPLE_CONFIG, ConsortiumConfig, build_consortium
from ledger.errors import LedgerError
from nodes.config import BlockConfig, render
from traceability.trust import park_rules


class ClusterError(LedgerError):
    code = "cluster_error"


@dataclass(frozen=True)
class Member:
    id: str
    p2p: str
    api: str

    @property
    def url(self) -> str:
        return f"http://{self.api}"


COMPOSE_P2P = 26656
COMPOSE_API = 8000
#: docker-compose.yml publishes the i-th node's API on 127.0.0.1:8701+i of the host.
COMPOSE_HOST_API = 8700


def compose_public_urls(index: int, node_id: str) -> tuple[str, ...]:
    """Where a compose node's API is reached: by its service name inside the compose
    network, and at its published port on the host (request signatures name these)."""
    port = COMPOSE_HOST_API + index + 1
    return (
        f"http://{node_id}:{COMPOSE_API}",
        f"http://localhost:{port}",
        f"http://127.0.0.1:{port}",
    )


#: Where the kernel picks ports for outgoing connections (Linux; the usual default).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL = (32768, 60999)
#: Ports below this are left to the system's own services.
LOWEST_PORT = 10000


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL


def free_ports(count: int = 8, host: str = "127.0.0.1") -> int:
    """A port that is free now with the `count` ports after it (a cluster's p2p or API
    ports are base+1, base+2, …); 0 asks for one free port.

    Never in the ephemeral range: the kernel hands those out as the source port of
    outgoing connections, so a node's port could be taken (even by a client connecting
    to that very port before the node listens) between this call and the node's bind."""
    low, high = ephemeral_range()
    spans = [(LOWEST_PORT, low - count - 1), (high + 1, 65535 - count)]
    spans = [(start, end) for start, end in spans if end >= start]
    if not spans:
        raise RuntimeError(f"no room for {count + 1} ports outside the ephemeral range")
    pick = random.SystemRandom()
    for _ in range(200):
        start, end = pick.choice(spans)
        base = pick.randint(start, end)
        if all(_port_free(host, port) for port in range(base, base + count + 1)):
            return base
    raise RuntimeError(f"no {count + 1} consecutive free ports on {host}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def compose_db_url(node_id: str) -> str:
    """Each compose node's own PostgreSQL service (see docker-compose.yml). No password:
    libpq takes it from PGPASSWORD, set from the node's db.env (devtools/compose_bundle.py)."""
    return f"postgresql://parktrace@{node_id}-db:5432/parktrace"


def consortium_config(nodes: int) -> ConsortiumConfig:
    """The park's sample consortium with `nodes` validators spread over its validator
    organisations (the sample has four: one each)."""
    if nodes < 1:
        raise ClusterError("a consortium needs at least one validator")
    data = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    hosts = [org for org in data["organizations"] if org.get("validators")]
    for org in hosts:
        org["validators"] = []
    for i in range(nodes):
        org = hosts[i % len(hosts)]
        base = _node_name(org["id"])
        org["validators"].append(base if i < len(hosts) else f"{base}-{i // len(hosts) + 1}")
    for org in hosts:
        if not org["validators"]:
            org["roles"] = [r for r in org["roles"] if r != "validator"] or ["retailer"]
            del org["validators"]
    data["rules"] = park_rules()  # the park's trust rules: GI zones, product classes
    return ConsortiumConfig.from_dict(data)


def _node_name(org_id: str) -> str:
    names = {
        "park-committee": "park-committee-node",
        "market-supervision-bureau": "market-supervision-node",
        "testing-centre": "testing-centre-node",
        "ganzhou-mask-factory": "mask-factory-node",
    }
    return names.get(org_id, f"{org_id}-node")


def create(
    directory: Path,
    *,
    nodes: int = 4,
    p2p_port: int = 26600,
    api_port: int = 8600,
    host: str = "127.0.0.1",
    blocks: BlockConfig | None = None,
    consensus: dict[str, float] | None = None,
    compose: bool = False,
) -> list[Member]:
    """Write consortium, node configs and cluster.json, keeping what already exists.

    `compose`: configs for docker-compose instead of one machine: each node is reached by
    its service name on fixed ports, listens on all interfaces, keeps its chain in its
    own PostgreSQL service `<node>-db`, and reads only its own bundle of files
    (devtools/compose_bundle.py).
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "cluster.json"
    if manifest.exists():
        found = members(directory)
        if compose:
            compose_bundle.write(directory, [m.id for m in found])
        return found
    consortium_dir = directory / "consortium"
    if not (consortium_dir / "genesis.json").exists():
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        build_consortium(consortium_config(nodes), now).write(consortium_dir, force=True)
    from ledger.genesis import Genesis

    genesis = Genesis.load(consortium_dir / "genesis.json")
    ids = [v.id for v in genesis.validator_set().validators]
    delegated = capture_delegations(genesis)
    if compose:
        found = [Member(vid, f"{vid}:{COMPOSE_P2P}", f"{vid}:{COMPOSE_API}") for vid in ids]
    else:
        found = [
            Member(vid, f"{host}:{p2p_port + i + 1}", f"{host}:{api_port + i + 1}")
            for i, vid in enumerate(ids)
        ]
    for index, member in enumerate(found):
        folder = directory / member.id
        folder.mkdir(exist_ok=True)
        (folder / "node.toml").write_text(
            render(
                node_id=member.id,
                consortium=None if compose else "../consortium",
                own_files=compose_bundle.OWN_FILES if compose else None,
                data_dir=compose_bundle.STATE if compose else ".",
                db=compose_db_url(member.id) if compose else "sqlite:///node.db",
                listen=f"0.0.0.0:{COMPOSE_P2P}" if compose else member.p2p,
                peers={m.id: m.p2p for m in found if m.id != member.id},
                api_listen=f"0.0.0.0:{COMPOSE_API}" if compose else member.api,
                public_urls=compose_public_urls(index, member.id) if compose else (),
                capture_signers=() if compose else delegated.get(member.id, ()),
                blocks=blocks,
                consensus=consensus,
            ),
            encoding="utf-8",
        )
    if compose:
        compose_bundle.write(directory, [m.id for m in found])
    manifest.write_text(json.dumps({"nodes": [asdict(m) for m in found]}, indent=2) + "\n")
    return found


def capture_delegations(genesis: Any) -> dict[str, tuple[str, ...]]:
    """Whose EPCIS captures each node of a local cluster signs: its own organisation's,
    and on the first node those of every organisation that runs no node (a tenant's EPCIS
    software then captures with HTTP Message Signatures alone). A local cluster holds the
    whole consortium directory, so every delegated certificate is at hand."""
    running = {v.id: v.org for v, _ in genesis.validators}
    orgs = [org.id for org, _ in genesis.organizations]
    without_node = tuple(o for o in orgs if o not in running.values())
    delegated = {node: (org,) for node, org in running.items()}
    first = next(iter(running), None)
    if first is not None:
        delegated[first] += without_node
    return delegated


def members(directory: Path) -> list[Member]:
    manifest = directory / "cluster.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return [Member(**m) for m in data["nodes"]]
    except FileNotFoundError:
        raise ClusterError(
            f"no cluster in {directory} (run `parktrace cluster up` first)"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"{manifest} is damaged: {exc}") from exc


def pid_of(directory: Path, node_id: str) -> int | None:
    """The node's process id, if it is running."""
    pid_file = directory / node_id / "node.pid"
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def start(
    directory: Path,
    node_id: str,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
) -> int:
    """Start one node as a detached process; its output goes to node.log. `env` adds to
    the environment it inherits (fault tests preload a fake clock this way); `command`,
    the interpreter's arguments in place of `-m cli node run --config node.toml` (tests
    run a faulty or an extended node this way, still stopped by `stop`)."""
    running = pid_of(directory, node_id)
    if running:
        return running
    # The process runs in its own folder (relative paths in node.toml are the file's own),
    # so the path it is given must not depend on the caller's working directory.
    folder = (directory / node_id).resolve()
    config = folder / "node.toml"
    with open(folder / "node.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, *(command or ("-m", "cli", "node", "run", "--config", str(config)))],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=folder,
            env={**os.environ, **env} if env else None,
        )
    (folder / "node.pid").write_text(str(process.pid))
    return process.pid


def bind_api(directory: Path, member: Member, host: str, public: str | None = None) -> None:
    """Make the node's API listen on `host` (its port unchanged): the demo opens it to the
    LAN when its codes point at a LAN address. `public` (scheme://host): where clients
    reach it, at its own port, which request signatures may then name. Peer links are
    left where they are."""
    path = directory / member.id / "node.toml"
    text = path.read_text(encoding="utf-8")
    port = member.api.rpartition(":")[2]
    urls = f'\npublic_urls = ["{public}:{port}"]' if public else ""
    changed = re.sub(
        r'(?m)^(\[api\]\s*\nlisten = )"[^"]*"(\npublic_urls = .*)?',
        lambda m: f'{m.group(1)}"{host}:{port}"{urls}',
        text,
    )
    if changed != text:
        path.write_text(changed, encoding="utf-8")


def health(member: Member, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{member.url}/healthz", timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def wait_ready(directory: Path, found: list[Member], timeout: float = 60.0) -> list[str]:
    """Wait until every started node answers /healthz; return those that never did."""
    deadline = time.monotonic() + timeout
    waiting = {m.id: m for m in found}
    while waiting and time.monotonic() < deadline:
        for node_id, member in list(waiting.items()):
            if health(member, timeout=1.0) is not None:
                del waiting[node_id]
            elif pid_of(directory, node_id) is None:
                return [*waiting]  # it died: no point waiting
        time.sleep(0.2)
    return [*waiting]


def stop(directory: Path, node_id: str, timeout: float = 20.0) -> bool:
    """SIGTERM, wait for a clean exit, SIGKILL if it never comes. False if not running."""
    pid = pid_of(directory, node_id)
    if pid is None:
        (directory / node_id / "node.pid").unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    (directory / node_id / "node.pid").unlink(missing_ok=True)
    return True


def alive(pid: int) -> bool:
    """Alive and not a zombie (our own children linger as zombies until reaped)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))
