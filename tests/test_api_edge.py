"""The API's edge limits in process: body sizes while streaming, the JSON object budget,
per-client rates, one answer to a byte order mark on every endpoint, and the settings in
node.toml. (Connections, timeouts and descriptors: tests/test_hostile_clients.py.)"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.edge.connections import RateLimitedLog, connection_cap
from api.edge.ratelimit import MAX_CLIENTS, TokenBuckets
from api.services import ApiSettings
from devtools import cluster
from devtools.samples import sample_event_tx
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.config import ApiLimits, ConfigError, NodeConfig
from nodes.solo import SoloNode

BOM = b"\xef\xbb\xbf"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def park() -> Consortium:
    return Consortium.sample(seed=b"edge tests")


@pytest.fixture
def client(park: Consortium, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(park, tmp_path, ApiLimits())


def _client(park: Consortium, tmp_path: Path, limits: ApiLimits) -> Iterator[TestClient]:
    node = SoloNode(park.genesis, park.validator_keys, Store(f"sqlite:///{tmp_path / 'n.db'}"))
    with TestClient(create_app(node, settings=ApiSettings(limits=limits))) as test_client:
        yield test_client


def test_every_endpoint_ignores_a_leading_byte_order_mark(park, client) -> None:
    one = sample_event_tx(park, 1).to_json()
    batch = {"transactions": [sample_event_tx(park, 2).to_json()]}
    submitted = client.post(
        "/v1/transactions", content=BOM + json.dumps(one).encode(), headers=JSON
    )
    assert submitted.status_code == 202, submitted.text
    batched = client.post(
        "/v1/transactions/batch", content=BOM + json.dumps(batch).encode(), headers=JSON
    )
    assert batched.status_code == 200 and batched.json()["accepted"] == 1, batched.text
    ids = {"ids": [submitted.json()["id"]]}
    status = client.post(
        "/v1/transactions/status", content=BOM + json.dumps(ids).encode(), headers=JSON
    )
    assert status.status_code == 200, status.text
    assert status.json()["statuses"][0]["state"] in ("pending", "committed")


@pytest.mark.parametrize(
    "body",
    [b'{"ids": ["\\ud800"]}', b'{"ids": ["\\udfff', b'{"ids": [1]}', b'{"ids": "x"}', b"[]"],
)
def test_a_bad_status_query_is_a_client_error(client, body: bytes) -> None:
    response = client.post("/v1/transactions/status", content=body, headers=JSON)
    assert response.status_code in (400, 422), response.text
    assert response.json()["status"] == response.status_code


def test_a_body_without_length_is_cut_off_at_the_limit(park, tmp_path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"ids": ['
        for _ in range(100):
            yield (b'"' + b"0" * 64 + b'",') * 100
        yield b'"0"]}'

    for test_client in _client(park, tmp_path, ApiLimits(max_body_bytes=64 * 1024)):
        response = test_client.post("/v1/transactions/status", content=chunks(), headers=JSON)
        assert response.status_code == 413, response.text
        assert response.json()["message"] == "request body exceeds 65536 bytes"


def test_a_declared_length_over_the_limit_is_refused_at_once(client) -> None:
    response = client.post(
        "/v1/transactions", content=b"x" * (ApiLimits().max_body_bytes + 1), headers=JSON
    )
    assert response.status_code == 413
    assert "limit" in response.json()["message"]


def test_a_transaction_holding_too_many_json_objects_is_not_parsed(park, client) -> None:
    tx = sample_event_tx(park, 3).to_json()
    tx["body"]["payload"]["padding"] = [{}] * 300
    response = client.post("/v1/transactions", json=tx)
    assert response.status_code == 413, response.text
    assert "JSON objects and arrays" in response.json()["message"]


def test_a_client_over_its_rate_gets_429_with_retry_after(park, tmp_path) -> None:
    for test_client in _client(park, tmp_path, ApiLimits(rate=0.5, burst=3)):
        answers = [test_client.get("/v1/chain") for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[-1]
        assert refused.json()["error"] == "rate_limited"
        assert refused.headers["retry-after"] == "2"


def test_token_buckets_refill_and_forget_old_clients() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert buckets.take("a") == 0.0  # one token back after half a second
    assert buckets.take("b") == 0.0  # each client has its own bucket
    for i in range(MAX_CLIENTS + 10):
        buckets.take(f"client-{i}")
    assert len(buckets._buckets) == MAX_CLIENTS


def test_accept_failures_are_logged_once_per_period() -> None:
    limiter = RateLimitedLog(every=60)
    records = [
        logging.LogRecord(
            "asyncio", logging.ERROR, "", 0, "socket.accept() out of system resource\nx", (), None
        )
        for _ in range(1000)
    ]
    other = logging.LogRecord("asyncio", logging.ERROR, "", 0, "something else", (), None)
    assert sum(limiter.filter(r) for r in records) == 1
    assert limiter.filter(other)


def test_the_connection_cap_leaves_descriptors_in_reserve() -> None:
    limits = ApiLimits(max_connections=1000, descriptor_reserve=128)
    assert connection_cap(limits, 1024) == 896
    assert connection_cap(limits, 65536) == 1000


def test_node_toml_sets_the_limits(tmp_path: Path) -> None:
    base = {"node": {"id": "n", "db": "sqlite:///n.db", "consortium": "c"}}
    config = NodeConfig.from_dict(
        {**base, "api": {"listen": "127.0.0.1:9000", "max_connections": 50, "rate": 5.5}},
        tmp_path,
    )
    assert config.api_listen == ("127.0.0.1", 9000)
    assert config.api == ApiLimits(max_connections=50, rate=5.5)
    with pytest.raises(ConfigError, match="unknown key"):
        NodeConfig.from_dict({**base, "api": {"max_conections": 5}}, tmp_path)
    with pytest.raises(ConfigError, match=">= 0"):
        NodeConfig.from_dict({**base, "api": {"header_timeout": -1}}, tmp_path)


def test_free_ports_are_below_the_ephemeral_range_and_free() -> None:
    low, _ = cluster.ephemeral_range()
    for _ in range(20):
        base = cluster.free_ports(8)
        assert (base >= cluster.LOWEST_PORT and base + 8 < low) or base > cluster.ephemeral_range()[
            1
        ]
        for port in range(base, base + 9):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
