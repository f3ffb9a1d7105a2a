"""EPCIS query subscriptions on a real node process: a webhook subscriber (a small HTTP
server of the test) and a WebSocket client receive every event committed after they
subscribed, the webhook's each with a GS1-Signature it verifies; stopped and restarted,
the subscriber receives exactly what it had not acknowledged, also across a restart of
the node."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from devtools.cluster import free_ports
from ledger.consortium import Consortium
from sdk.signing import sign_request
from tests.localnet import end_process, start_solo
from tests.test_epcis_binding import MASKS, Node, capture, event

TOKEN = "13df38d8275b13f05704629e5f1cf3d45d6132d5"


class Subscriber:
    """An HTTP server taking webhook pushes on a fixed port; stop() and start() it."""

    def __init__(self) -> None:
        self.port = free_ports(0)
        self.received: list[str] = []
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        outer = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                expected = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(self.headers.get("GS1-Signature", ""), expected):
                    outer.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                results = json.loads(body)["epcisBody"]["queryResults"]
                outer.received += [e["eventID"] for e in results["resultsBody"]["eventList"]]
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Hook)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def wait_for(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def node(tmp_path) -> Iterator[Node]:
    Consortium.sample(seed=b"subscription tests").write(tmp_path / "consortium")
    port = free_ports(0)
    node = Node(f"http://127.0.0.1:{port}", tmp_path / "consortium", tmp_path)
    node.process = start_solo(tmp_path, node.consortium, port, "--capture-signer", MASKS)
    try:
        yield node
    finally:
        node.http.close()
        end_process(node.process, 10)


def restart(node: Node) -> None:
    end_process(node.process, 10)
    port = int(node.url.rsplit(":", 1)[1])
    node.process = start_solo(node.root, node.consortium, port, "--capture-signer", MASKS)


def shipments(first: int, count: int) -> list[dict[str, Any]]:
    return [event(n, "shipping") for n in range(first, first + count)]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventID"] for e in events]


def named_query(node: Node) -> None:
    query = {"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}}
    assert node.send("POST", "/queries", MASKS, query).status_code == 201


def test_a_webhook_receives_each_committed_event_once_across_restarts(node: Node) -> None:
    capture(node, MASKS, *shipments(100, 2))  # before the subscription: not delivered
    named_query(node)
    hook = Subscriber()
    hook.start()
    sub = {"dest": hook.url, "signatureToken": TOKEN, "stream": True}
    made = node.send("POST", "/queries/shipments/subscriptions", MASKS, sub)
    assert made.status_code == 201 and "signatureToken" not in made.json()
    first = shipments(1, 3)
    capture(node, MASKS, *first)
    wait_for(lambda: len(hook.received) >= 3)
    assert hook.received == ids(first)

    hook.stop()  # the subscriber is away while more is committed
    second = shipments(4, 3)
    capture(node, MASKS, *second)
    time.sleep(1.5)  # pushes fail meanwhile; nothing is acknowledged
    hook.start()
    wait_for(lambda: len(hook.received) >= 6)
    time.sleep(1)
    assert hook.received == ids(first + second)

    restart(node)  # the position is in the node's store
    third = shipments(7, 2)
    capture(node, MASKS, *third)
    wait_for(lambda: len(hook.received) >= 8)
    time.sleep(1)
    assert hook.received == ids(first + second + third)
    assert hook.bad_signatures == 0
    hook.stop()


def _signed_headers(node: Node, path: str) -> dict[str, str]:
    request = httpx.Request("GET", node.url + path)
    sign_request(request, node.identity(MASKS), b"")
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}


def _documents(socket: Any, count: int, *, ack: bool) -> list[str]:
    received: list[str] = []
    while len(received) < count:
        results = json.loads(socket.recv(timeout=20))["epcisBody"]["queryResults"]
        received += [e["eventID"] for e in results["resultsBody"]["eventList"]]
        if ack:
            socket.send(json.dumps({"ack": results["parktrace:position"]}))
    return received


def test_a_websocket_stream_resumes_from_what_it_acknowledged(node: Node) -> None:
    named_query(node)
    ws = node.url.replace("http", "ws")
    path = "/queries/shipments/events?stream=true"
    with connect(ws + path, additional_headers=_signed_headers(node, path)) as socket:
        hello = json.loads(socket.recv(timeout=10))
        first = shipments(20, 2)
        capture(node, MASKS, *first)
        assert _documents(socket, 2, ack=True) == ids(first)
        second = shipments(22, 1)
        capture(node, MASKS, *second)
        assert _documents(socket, 1, ack=False) == ids(second)  # gone before acknowledging
    third = shipments(23, 1)
    capture(node, MASKS, *third)
    path = f"/queries/shipments/events?subscriptionID={hello['subscriptionID']}"
    with connect(ws + path, additional_headers=_signed_headers(node, path)) as socket:
        json.loads(socket.recv(timeout=10))
        assert _documents(socket, 2, ack=True) == ids(second + third)
    unsigned = node.send("GET", "/queries/shipments/events", None)
    assert unsigned.status_code == 401
