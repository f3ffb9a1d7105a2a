"""The regulator console over HTTP against a real node process (`parktrace serve --solo`):
its page in both languages from this node alone, the console's sign-in refused to any
certificate without the regulator role (and no session left for it), and the node list
answered only to a signed-in regulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.console.sessions import signed_bytes
from devtools.cluster import free_ports
from ledger import codec
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from tests.localnet import end_process, start_solo

REGULATOR = "market-supervision-bureau"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("regulator-http")
    park = Consortium.sample(seed=b"regulator tests")
    park.write(root / "consortium")
    port = free_ports(0)
    process = start_solo(root, root / "consortium", port)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "park": park}
    finally:
        end_process(process, 10)


def sign_in(http: httpx.Client, key: PrivateKey) -> httpx.Response:
    challenge = http.post("/regulator/api/challenge").json()
    message = signed_bytes(challenge["chain_id"], challenge["authority"], challenge["challenge"])
    signature = codec.b64encode(key.sign(message))
    return http.post(
        "/regulator/api/session", json={"challenge": challenge["challenge"], "signature": signature}
    )


def test_the_page_is_served_in_both_languages_with_the_consoles_key_script(node: dict) -> None:
    with httpx.Client(base_url=node["url"]) as http:
        zh = http.get("/regulator/")
        assert (
            zh.status_code == 200 and '<html lang="zh-CN">' in zh.text and "监管控制台" in zh.text
        )
        en = http.get("/regulator/?lang=en")
        assert "Regulator console" in en.text
        assert "default-src 'self'" in zh.headers["content-security-policy"]
        for src in ("/console/static/keys.js", "/regulator/static/app.js"):
            assert src in zh.text and http.get(src).status_code == 200
        assert http.get("/regulator/static/../app.py").status_code == 404
        assert http.get("/regulator/static/nothing.js").status_code == 404


def test_only_the_regulator_signs_in(node: dict) -> None:
    park = node["park"]
    with httpx.Client(base_url=node["url"]) as http:
        assert http.get("/regulator/api/nodes").status_code == 401
        producer, _ = park.user_key("gannan-orchard-coop")
        refused = sign_in(http, producer)
        assert refused.status_code == 403, refused.text
        assert "is not a regulator" in refused.json()["message"]
        assert "pt_regulator" not in refused.headers.get("set-cookie", "")
        assert http.get("/regulator/api/me").status_code == 401
        key, fingerprint = park.user_key(REGULATOR)
        answer = sign_in(http, key)
        assert answer.status_code == 200, answer.text
        assert answer.json()["fingerprint"] == fingerprint and "regulator" in answer.json()["roles"]
        nodes = http.get("/regulator/api/nodes").json()
        assert [n["up"] for n in nodes["nodes"]] == [True] and nodes["configured"] is False
        # The producer console's session cookie is not the regulator's.
        assert http.get("/console/api/me").status_code == 401
        assert http.delete("/regulator/api/session").status_code == 204
        assert http.get("/regulator/api/nodes").status_code == 401
