"""`parktrace demo`: the park's consortium running on this machine.

Four validator nodes (Park Management Committee, Market Supervision Bureau, the testing
and inspection centre, the mask factory) start as separate processes on embedded SQLite;
the three cases' histories (Gannan oranges, Wenshan notoginseng, masks) are signed by
their organisations and submitted over the nodes' HTTP API like any producer would; the
consumer pages, API docs and a QR code are printed; Ctrl-C stops every process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx

from api.histories import build_histories
from devtools import cluster
from ledger.consortium import Consortium
from ledger.timefmt import now
from ledger.tx import Transaction
from nodes.config import BlockConfig
from traceability.codes.sealing import ResolverKey

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def resolver_key(self) -> Path:
        return self.root / "resolver.key"

    @property
    def manifest(self) -> Path:
        return self.root / "demo.json"


class ClusterChain:
    """What `histories.Recorder` needs of a chain, over a running cluster's API: each
    transaction is submitted to the nodes in turn and followed until it commits."""

    def __init__(self, urls: list[str], timeout: float = 60.0) -> None:
        self.urls = urls
        self.http = httpx.Client(timeout=timeout + 10)
        self.timeout = timeout
        self.turn = 0
        self.state = SimpleNamespace(head_time=now())

    def commit_block(self, txs: list[Transaction], _time: str | None = None) -> Any:
        url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        height = 0
        for tx in txs:
            response = self.http.post(f"{url}/v1/transactions", json=tx.to_json())
            if response.status_code not in (202, 409):
                raise cluster.ClusterError(f"{url} refused a demo transaction: {response.text}")
            status = self.http.get(
                f"{url}/v1/transactions/{tx.id}", params={"wait": self.timeout}
            ).json()
            if status.get("state") != "committed":
                raise cluster.ClusterError(f"demo transaction not committed: {status}")
            height = status["height"]
        self.state.head_time = now()
        return SimpleNamespace(height=height)


def _resolver_key(paths: DemoPaths) -> ResolverKey:
    if paths.resolver_key.exists():
        return ResolverKey.load(paths.resolver_key)
    key = ResolverKey.generate()
    fd = os.open(paths.resolver_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.text())
    return key


def stop_all(root: Path, say: Say = print) -> None:
    try:
        members = cluster.members(root)
    except cluster.ClusterError:
        return
    # All at once: each stop waits for its node's clean exit.
    with ThreadPoolExecutor(len(members) or 1) as pool:
        stopped = list(pool.map(lambda m: cluster.stop(root, m.id), members))
    for member, was_running in zip(members, stopped, strict=True):
        if was_running:
            _tell(say, f"stopped {member.id}")


def _tell(say: Say, message: str) -> None:
    """Say it if anyone still listens: after Ctrl-C on `make demo | tee demo.log` the pipe's
    reader may be gone, and stopping the nodes must not depend on being able to print
    (Rich answers a broken pipe with SystemExit)."""
    with contextlib.suppress(BrokenPipeError, OSError, SystemExit):
        say(message)


def lan_address() -> str | None:
    """This machine's address on its local network, if it has one: what a phone on the same
    Wi-Fi can reach. A UDP socket's connect only picks the route; nothing is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def default_public_url(api_port: int) -> str:
    return f"http://{lan_address() or '127.0.0.1'}:{api_port + 1}"


def check_public_url(url: str) -> str:
    """The base URL the codes point at: scheme, host and port of the first node's API."""
    parts = urlsplit(url.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        raise cluster.ClusterError(
            f"--public-url: expected a base URL such as http://192.168.1.20:8601, got {url!r}"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _origin(url: str) -> str:
    """scheme://host of a base URL, without its port."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    return f"{parts.scheme}://{host}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def start(
    root: Path,
    *,
    reset: bool,
    p2p_port: int = 26600,
    api_port: int = 8600,
    public_url: str | None = None,
    say: Say = print,
) -> dict[str, Any]:
    """Bring the demo consortium up (recording the histories on first run); returns the
    manifest with every URL worth opening.

    `public_url`: where the printed codes and pages point (default: this machine's LAN
    address, so that a phone on the same network can scan them). When it is not a loopback
    address the nodes' APIs listen on every interface; peer links stay on loopback."""
    root = root.resolve()
    paths = DemoPaths(root)
    if reset and root.exists():
        stop_all(root, say)
        shutil.rmtree(root)
    public = check_public_url(public_url or default_public_url(api_port))
    members = cluster.create(
        root,
        nodes=4,
        p2p_port=p2p_port,
        api_port=api_port,
        blocks=BlockConfig(max_txs=2000, batch_ms=50, idle_ms=10_000),
    )
    loopback = _is_loopback(public)
    bind = "127.0.0.1" if loopback else "0.0.0.0"
    for member in members:
        cluster.bind_api(root, member, bind, None if loopback else _origin(public))
    key = _resolver_key(paths)
    os.environ["PARKTRACE_RESOLVER_KEY"] = str(paths.resolver_key)
    os.environ["PARKTRACE_RESOLVER_HOST"] = public
    for member in members:
        cluster.start(root, member.id)
    missing = cluster.wait_ready(root, members, timeout=90)
    if missing:
        stop_all(root, say)
        logs = ", ".join(str(root / m / "node.log") for m in missing)
        raise cluster.ClusterError(f"nodes not ready: {', '.join(missing)} (see {logs})")
    say(f"4 nodes up: {', '.join(m.id for m in members)}")
    say(f"codes and pages point at {public} (choose with --public-url)")
    if paths.manifest.exists():
        say(f"reusing the recorded histories in {root} (pass --reset to start over)")
        manifest = json.loads(paths.manifest.read_text(encoding="utf-8"))
    else:
        consortium = Consortium.load(root / "consortium")
        chain = ClusterChain([m.url for m in members])
        say("recording the three cases' histories through the nodes' API …")
        cases = build_histories(consortium, chain, [key.public], public)  # type: ignore[arg-type]
        manifest = {
            "cases": {
                name: {
                    "code": case.code.uri(public),
                    "path": case.code.path(),
                    "steps": [step.label for step in case.steps],
                }
                for name, case in cases.items()
            },
        }
        paths.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    manifest |= {
        "public": public,
        "api": members[0].url,
        "docs": f"{public}/docs",
        "nodes": {m.id: m.url for m in members},
    }
    for case in manifest["cases"].values():
        case["page"] = f"{public}{case['path']}"
    return manifest


def wait_for_signal(root: Path, say: Say = print) -> None:
    """Stay up until Ctrl-C or SIGTERM, then stop every node process."""
    stopping = {"now": False}

    def request_stop(_sig: int, _frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stopping["now"]:
            time.sleep(0.2)
    finally:
        _tell(say, "stopping the consortium …")
        stop_all(root, say)
        try:
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            # Nobody reads our output any more; keep Python from complaining about it at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
