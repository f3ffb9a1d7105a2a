"""The OpenAPI document: every endpoint documented with its error responses, and a
schemathesis run against it (in-process ASGI, seeded) that finds no server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from api.app import create_app
from api.services import ApiSettings
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode
from tests.server_errors import assert_no_server_error, documented_operations

EXPECTED = {
    ("get", "/v1/chain"),
    ("post", "/v1/transactions"),
    ("post", "/v1/transactions/batch"),
    ("post", "/v1/transactions/status"),
    ("get", "/v1/transactions/{tx_id}"),
    ("get", "/v1/transactions/{tx_id}/receipt"),
    ("post", "/capture"),
    ("get", "/capture"),
    ("get", "/capture/{captureID}"),
    ("get", "/events"),
    ("get", "/events/{eventID}"),
    ("get", "/v1/products/{identifier}/history"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    park = Consortium.sample(seed=b"openapi tests")
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'node.db'}")
    node = SoloNode(park.genesis, park.validator_keys, store)
    # A short long-poll cap keeps generated `wait` values from stalling the run.
    yield create_app(node, settings=ApiSettings(max_wait=0.05))
    store.close()


def test_every_endpoint_documents_its_errors(app: FastAPI) -> None:
    spec = app.openapi()
    operations = {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if not path.startswith(("/docs", "/openapi", "/redoc"))
    }
    assert set(operations) >= EXPECTED, EXPECTED - set(operations)
    for (method, path), op in operations.items():
        if (method, path) not in EXPECTED:
            continue  # another area's router
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        errors = {code for code in op["responses"] if code.startswith(("4", "5"))}
        assert "422" in errors, where
        for code in errors:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (where, code)
    body = spec["components"]["schemas"]["ErrorBody"]
    assert {"error", "message", "status", "field", "rule"} <= set(body["properties"])
    assert {"409", "403", "413", "503"} <= set(
        spec["paths"]["/v1/transactions"]["post"]["responses"]
    )
    assert "401" in spec["paths"]["/capture"]["post"]["responses"]


def test_no_server_errors(app: FastAPI) -> None:
    """Every operation, with generated valid and invalid input: never a 5xx."""
    found = documented_operations(app)
    assert len(found) >= len(EXPECTED)
    for operation in found:
        assert_no_server_error(operation, examples=12)
