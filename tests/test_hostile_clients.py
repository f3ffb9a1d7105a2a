"""A real node process (`node run`, a one-validator consortium committing heartbeat blocks)
against hostile clients over real sockets (tests/hostile.py), with its descriptor limit set
to 1,024 so that exhausting it is cheap: huge and amplifying bodies, idle and slowloris
connections, more connections than descriptors. The node must answer, keep committing and
stay alive. The fault suite runs the same clients against one node of four.
"""

from __future__ import annotations

import json
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
from tests import hostile
from tests.localnet import FAST, end_process

pytestmark = pytest.mark.slow


@dataclass
class Node:
    process: subprocess.Popen
    member: cluster.Member
    folder: Path

    @property
    def address(self) -> tuple[str, int]:
        return hostile.address_of(self.member.url)

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
    hostile.with_header_timeout(config)
    with open(folder / "node.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", hostile.LIMITED_NODE, str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
        )
    (folder / "node.pid").write_text(str(process.pid))
    started = Node(process, member, folder)
    try:
        assert not cluster.wait_ready(directory, [member], 60), started.log()
        yield started
    finally:
        end_process(process, 20)


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
    body = hostile.huge_batch()
    peak = node.memory("VmHWM")
    response, elapsed = hostile.post(node.member.url, "/v1/transactions/batch", body)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large"
    assert elapsed < 2.0
    assert node.memory("VmHWM") - peak < 50


def test_a_batch_of_empty_objects_within_the_byte_limit_never_reaches_the_parser(
    node: Node,
) -> None:
    """Refused by its count of objects, while the node keeps answering and committing."""
    peak = node.memory("VmHWM")
    with HealthProbe(node) as probe:
        time.sleep(0.3)
        response, _ = hostile.post(
            node.member.url, "/v1/transactions/batch", hostile.amplifying_batch()
        )
        time.sleep(0.5)
    assert response.status_code == 413, response.text
    assert "JSON objects and arrays" in response.json()["message"]
    assert node.memory("VmHWM") - peak < 100
    assert probe.slowest < 1.0, f"/healthz took {probe.slowest:.2f} s during the batch"
    assert probe.heights[-1] > probe.heights[0], "no block committed meanwhile"


def test_a_100_mb_status_query_is_refused_from_its_head(node: Node) -> None:
    start = time.monotonic()
    answer = hostile.raw_request(node.address, hostile.huge_status_head(node.address))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer
    assert time.monotonic() - start < 2.0


def test_more_idle_connections_than_descriptors_leave_the_node_alive(node: Node) -> None:
    log_before = node.log_size()
    height = node.health()["height"]
    with hostile.idle_connections(node.address) as opened:
        time.sleep(0.5)
        # Over the cap: answered 503 and closed at once.
        assert hostile.turned_away(opened[-100:]) > 50
        busy = httpx.get(f"{node.member.url}/healthz", timeout=5)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        # Those held are closed once they have sent nothing for the header timeout.
        assert hostile.wait_until_served(node.member.url, 3 * hostile.HEADER_TIMEOUT)
        assert node.process.poll() is None, node.log()
        info = node.health()
        assert info["height"] > height
        assert info["signing"] and info["signstate_error"] is None
    assert node.log_size() - log_before < 64 * 1024, node.log()
    assert "Too many open files" not in node.log()


def test_slowloris_connections_are_closed_within_the_header_timeout(node: Node) -> None:
    """Each connection sends its head one byte a second; none gets to keep it open."""
    closed_at = hostile.slowloris(node.address, 50)
    assert len(closed_at) == 50, f"{50 - len(closed_at)} still open"
    assert max(closed_at.values()) <= 2 * hostile.HEADER_TIMEOUT + 1.5
    assert node.health()["height"] > 0


def test_malformed_requests_cannot_flood_the_log(node: Node) -> None:
    before = node.log_size()
    answers = [hostile.raw_request(node.address, hostile.MALFORMED) for _ in range(300)]
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
