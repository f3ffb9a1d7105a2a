"""RFC 9421 request signatures as docs/api.md states them: a signature is used once,
however its header is spelled and across restarts; it must be signed for this node."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.auth import AuthenticationError, RequestVerifier
from api.authorities import authority_of_url, listen_authorities, own_authorities
from api.replay import MemorySeen, StoreSeen
from ledger.consortium import Consortium
from ledger.errors import DuplicateError, SchemaError
from ledger.store import Store
from nodes.config import ConfigError, NodeConfig
from sdk.signing import Identity, sign_request

NODE = ("127.0.0.1", 8601)
URL = "http://127.0.0.1:8601/v1/audit/evidence?x=1"


def _identity(park: Consortium) -> Identity:
    holder = park.user("market-supervision-bureau")
    assert holder.key is not None
    return Identity(holder.key, holder.fingerprint)


def _signed(park: Consortium, url: str = URL) -> httpx.Request:
    request = httpx.Request("GET", url)
    sign_request(request, _identity(park), b"")
    return request


def _verifier(park: Consortium, store: Store) -> RequestVerifier:
    return RequestVerifier(
        park.genesis.membership, authorities=own_authorities(NODE), seen=StoreSeen(store)
    )


def _send(verifier: RequestVerifier, request: httpx.Request) -> str:
    return verifier.verify(request.method, str(request.url), request.headers, b"").org


@pytest.fixture
def store(tmp_path: Path):
    opened = Store(f"sqlite:///{tmp_path / 'node.db'}")
    yield opened
    opened.close()


def test_a_signature_is_accepted_once(park: Consortium, store: Store) -> None:
    verifier, request = _verifier(park, store), _signed(park)
    assert _send(verifier, request) == "market-supervision-bureau"
    with pytest.raises(DuplicateError, match="replay"):
        _send(verifier, request)


def test_a_replay_with_parameters_appended_to_the_signature_is_refused(
    park: Consortium, store: Store
) -> None:
    verifier, request = _verifier(park, store), _signed(park)
    _send(verifier, request)
    request.headers["Signature"] = request.headers["Signature"] + ";a=1"
    with pytest.raises(DuplicateError):
        _send(verifier, request)


def test_a_replay_under_another_label_is_refused(park: Consortium, store: Store) -> None:
    verifier, request = _verifier(park, store), _signed(park)
    _send(verifier, request)
    for name in ("Signature", "Signature-Input"):
        assert request.headers[name].startswith("pt=")
        request.headers[name] = "other=" + request.headers[name][3:]
    with pytest.raises(DuplicateError):
        _send(verifier, request)


def test_a_replay_after_a_restart_is_refused(park: Consortium, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    request = _signed(park)
    first = Store(url)
    _send(_verifier(park, first), request)
    first.close()
    again = Store(url)  # a new process: nothing in memory
    try:
        with pytest.raises(DuplicateError):
            _send(_verifier(park, again), request)
    finally:
        again.close()


def test_a_request_signed_for_another_node_is_refused_naming_its_authority(
    park: Consortium, store: Store
) -> None:
    request = _signed(park, "http://127.0.0.1:8602/v1/audit/evidence")
    with pytest.raises(AuthenticationError, match=r"signed for authority '127\.0\.0\.1:8602'"):
        _send(_verifier(park, store), request)


def test_expired_signatures_are_pruned_and_a_live_one_is_kept(store: Store) -> None:
    assert store.claim_once(b"a" * 32, expires=100, now=50)
    assert not store.claim_once(b"a" * 32, expires=100, now=100)
    assert store.claim_once(b"b" * 32, expires=300, now=101)  # prunes a
    assert store.claim_once(b"a" * 32, expires=400, now=102)
    memory = MemorySeen()
    assert memory.claim(b"a", 100, 50) and not memory.claim(b"a", 100, 100)
    assert memory.claim(b"b", 300, 101) and memory.claim(b"a", 400, 102)
    assert not memory.claim(b"a", 400, 200)


def test_authorities_follow_rfc_9421_normalisation() -> None:
    assert authority_of_url("https://Node-A.Park.example/") == "node-a.park.example"
    assert authority_of_url("http://node-a:80") == "node-a"
    assert authority_of_url("http://[::1]:8601") == "[::1]:8601"
    assert listen_authorities("127.0.0.1", 8601) == {
        "127.0.0.1:8601",
        "localhost:8601",
        "[::1]:8601",
    }
    assert listen_authorities("10.0.0.5", 80) == {"10.0.0.5:80", "10.0.0.5"}
    assert "localhost:8000" in listen_authorities("0.0.0.0", 8000)
    mine = own_authorities(("10.0.0.5", 8601), ["https://trace.park.example"])
    assert mine == {"10.0.0.5:8601", "trace.park.example"}
    with pytest.raises(SchemaError, match="public URL 'ftp://x'"):
        authority_of_url("ftp://x")


def test_node_toml_public_urls(tmp_path: Path) -> None:
    base = {"node": {"id": "n", "db": "sqlite:///n.db", "consortium": "c"}}
    config = NodeConfig.from_dict(
        {**base, "api": {"listen": "0.0.0.0:8000", "public_urls": ["https://a.example"]}},
        tmp_path,
    )
    assert config.public_urls == ("https://a.example",)
    with pytest.raises(ConfigError, match=r"\[api\] public_urls: expected http"):
        NodeConfig.from_dict({**base, "api": {"public_urls": ["a.example"]}}, tmp_path)
