"""A real node process (`node run`, a one-validator consortium committing heartbeat blocks)
against hostile clients over real sockets, with its descriptor limit set to 1,024 so that
exhausting it is cheap: huge and amplifying bodies, idle and slowloris connections, more
connections than descriptors. The node must answer, keep committing and stay alive.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devtools import cluster
from nodes.config import BlockConfig
from tests.localnet import FAST, end_process

pytestmark = pytest.mark.slow

DESCRIPTORS = 1024
HEADER_TIMEOUT = 3.0


@dataclass
class Node:
    process: subprocess.Popen
    member: cluster.Member
    folder: Path

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.member.api.rpartition(":")
        return host, int(port)

    def health(self, timeout: float = 5.0) -> dict:
        response = httpx.get(f"{self.member.url}/healthz", timeout=timeout)
        assert response.status_code == 200, response.text
        return response.json()

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM (peak) of the node process, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
        raise AssertionError(f"no {field} for {self.process.pid}")

    def log_size(self) -> int:
        return (self.folder / "node.log").stat().st_size

    def log(self) -> str:
        return (self.folder / "node.log").read_text()[-3000:]


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    directory = tmp_path_factory.mktemp("hostile")
    (member,) = cluster.create(
        directory,
        nodes=1,
        p2p_port=cluster.free_ports(),
        api_port=cluster.free_ports(),
        blocks=BlockConfig(max_txs=100, batch_ms=20, idle_ms=200),
        consensus=FAST,
    )
    folder = (directory / member.id).resolve()
    config = folder / "node.toml"
    listen = f'listen = "{member.api}"'
    config.write_text(
        config.read_text().replace(listen, f"{listen}\nheader_timeout = {HEADER_TIMEOUT}")
    )
    with open(folder / "node.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "node", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            preexec_fn=_few_descriptors,
        )
    (folder / "node.pid").write_text(str(process.pid))
    started = Node(process, member, folder)
    try:
        assert not cluster.wait_ready(directory, [member], 60), started.log()
        yield started
    finally:
        end_process(process, 20)


def _raw_request(node: Node, head: bytes, timeout: float = 10.0) -> bytes:
    """Send a request head (and no body) and read what the node answers."""
    with socket.create_connection(node.address, timeout=timeout) as conn:
        conn.sendall(head)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


class HealthProbe:
    """Polls /healthz in a thread: the slowest answer and the heights seen."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.slowest = 0.0
        self.heights: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                start = time.monotonic()
                self.heights.append(http.get(f"{self.node.member.url}/healthz").json()["height"])
                self.slowest = max(self.slowest, time.monotonic() - start)
                time.sleep(0.05)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_30_mb_batch_is_refused_before_it_is_read(node: Node) -> None:
    body = b'{"transactions": [' + b"{}," * 10_000_000 + b"{}]}"
    peak = node.memory("VmHWM")
    start = time.monotonic()
    response = httpx.post(
        f"{node.member.url}/v1/transactions/batch",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    elapsed = time.monotonic() - start
    assert 30_000_000 < len(body) < 32 * 1024 * 1024  # under the old limit of batch bodies
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large"
    assert elapsed < 2.0
    assert node.memory("VmHWM") - peak < 50


def test_a_batch_of_empty_objects_within_the_byte_limit_never_reaches_the_parser(
    node: Node,
) -> None:
    """8 MB of `{}` (4 million dicts once parsed), streamed without Content-Length: refused
    by its count of objects, while the node keeps answering and committing."""
    chunk = b",".join([b"{}"] * 100_000) + b","

    def body() -> Iterator[bytes]:
        yield b'{"transactions": ['
        for _ in range(20):
            yield chunk
        yield b"{}]}"

    peak = node.memory("VmHWM")
    with HealthProbe(node) as probe:
        time.sleep(0.3)
        response = httpx.post(
            f"{node.member.url}/v1/transactions/batch",
            content=body(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        time.sleep(0.5)
    assert response.status_code == 413, response.text
    assert "JSON objects and arrays" in response.json()["message"]
    assert node.memory("VmHWM") - peak < 100
    assert probe.slowest < 1.0, f"/healthz took {probe.slowest:.2f} s during the batch"
    assert probe.heights[-1] > probe.heights[0], "no block committed meanwhile"


def test_a_100_mb_status_query_is_refused_from_its_head(node: Node) -> None:
    host, port = node.address
    head = (
        f"POST /v1/transactions/status HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    ).encode()
    start = time.monotonic()
    answer = _raw_request(node, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer
    assert time.monotonic() - start < 2.0


def test_more_idle_connections_than_descriptors_leave_the_node_alive(node: Node) -> None:
    log_before = node.log_size()
    height = node.health()["height"]
    opened: list[socket.socket] = []
    try:
        for _ in range(1100):
            opened.append(socket.create_connection(node.address, timeout=5))
        time.sleep(0.5)
        # Over the cap: answered 503 and closed at once.
        turned_away = 0
        for conn in opened[-100:]:
            conn.settimeout(2)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                turned_away += conn.recv(100).startswith(b"HTTP/1.1 503")
        assert turned_away > 50
        busy = httpx.get(f"{node.member.url}/healthz", timeout=5)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        # Those held are closed once they have sent nothing for the header timeout.
        deadline = time.monotonic() + 3 * HEADER_TIMEOUT
        while time.monotonic() < deadline:
            if httpx.get(f"{node.member.url}/healthz", timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        assert node.process.poll() is None, node.log()
        info = node.health()
        assert info["height"] > height
        assert info["signing"] and info["signstate_error"] is None
    finally:
        for conn in opened:
            conn.close()
    assert node.log_size() - log_before < 64 * 1024, node.log()
    assert "Too many open files" not in node.log()


def test_slowloris_connections_are_closed_within_the_header_timeout(node: Node) -> None:
    """Each connection sends its head one byte a second; none gets to keep it open."""
    host, port = node.address
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nX-Padding: {'a' * 100}\r\n"
    conns = [socket.create_connection(node.address, timeout=5) for _ in range(50)]
    start = time.monotonic()
    closed_at: dict[int, float] = {}
    try:
        for byte in head.encode():
            for i, conn in enumerate(conns):
                if i in closed_at:
                    continue
                try:
                    conn.send(bytes([byte]))
                    conn.setblocking(False)
                    if conn.recv(1) == b"":
                        closed_at[i] = time.monotonic() - start
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    closed_at[i] = time.monotonic() - start
                finally:
                    conn.setblocking(True)
            if len(closed_at) == len(conns) or time.monotonic() - start > 4 * HEADER_TIMEOUT:
                break
            time.sleep(1.0)
    finally:
        for conn in conns:
            conn.close()
    assert len(closed_at) == len(conns), f"{len(conns) - len(closed_at)} still open"
    assert max(closed_at.values()) <= 2 * HEADER_TIMEOUT + 1.5
    assert node.health()["height"] > 0


def test_malformed_requests_cannot_flood_the_log(node: Node) -> None:
    before = node.log_size()
    answers = [_raw_request(node, b"NOT HTTP AT ALL\r\n\r\n") for _ in range(300)]
    assert all(answer.startswith(b"HTTP/1.1 400") for answer in answers), answers[0]
    assert node.log_size() - before < 8 * 1024
    assert node.health()["height"] > 0


def test_a_lone_surrogate_in_status_ids_is_a_client_error(node: Node) -> None:
    response = httpx.post(
        f"{node.member.url}/v1/transactions/status",
        content=b'{"ids": ["\\ud800"]}',
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert "surrogate" in response.json()["message"]
    assert json.loads(response.text)["error"] == "encoding_error"
