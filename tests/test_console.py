"""The producer console over HTTP against a real node process (`parktrace serve --solo`):
the page in both languages with its own assets and no third-party origin, sign-in by
challenge bound to the certificate whose key answered it, the refusals of a sign-in, and
the console's RFC 8785 library producing the bytes the node signs and hashes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.console.sessions import PREFIX, signed_bytes
from devtools.cluster import free_ports
from ledger import codec
from ledger.consortium import Consortium
from ledger.crypto import PrivateKey
from tests.localnet import end_process, start_solo

STATIC = Path(__file__).resolve().parents[1] / "web" / "static" / "console"
ORCHARD = "gannan-orchard-coop"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("console-http")
    park = Consortium.sample(seed=b"console tests")
    park.write(root / "consortium")
    port = free_ports(0)
    process = start_solo(root, root / "consortium", port)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield {"http": http, "park": park, "authority": f"127.0.0.1:{port}"}
    finally:
        http.close()
        end_process(process, 10)


def sign_in(node: dict[str, Any], key: PrivateKey) -> httpx.Response:
    http = node["http"]
    challenge = http.post("/console/api/challenge").json()
    assert challenge["prefix"] == PREFIX and challenge["authority"] == node["authority"]
    message = signed_bytes(challenge["chain_id"], challenge["authority"], challenge["challenge"])
    signature = codec.b64encode(key.sign(message))
    return http.post(
        "/console/api/session", json={"challenge": challenge["challenge"], "signature": signature}
    )


def test_the_page_is_served_in_both_languages_from_this_node_alone(node: dict) -> None:
    http = node["http"]
    zh = http.get("/console/")
    assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text
    assert "生产者控制台" in zh.text
    en = http.get("/console/?lang=en")
    assert '<html lang="en">' in en.text and "Producer console" in en.text
    assert '<html lang="en">' in http.get("/console/", headers={"Accept-Language": "en"}).text
    assert "default-src 'self'" in zh.headers["content-security-policy"]
    for src in ("canonicalize.js", "keys.js", "app.js", "bulk.js", "console.css"):
        assert f"/console/static/{src}" in zh.text
        asset = http.get(f"/console/static/{src}")
        assert asset.status_code == 200, src
    assert "http://" not in zh.text.replace("http://127.0.0.1", "") and "https://cdn" not in zh.text
    assert http.get("/console/static/../app.py").status_code == 404
    assert http.get("/console/static/nothing.js").status_code == 404
    assert http.get("/console/?lang=fr").status_code == 422


def test_a_member_signs_in_by_answering_a_challenge_and_out_again(node: dict) -> None:
    park, http = node["park"], node["http"]
    key, fingerprint = park.user_key(ORCHARD)
    answer = sign_in(node, key)
    assert answer.status_code == 200, answer.text
    me = answer.json()
    assert me["fingerprint"] == fingerprint and me["org"] == ORCHARD
    assert "producer" in me["roles"] and me["chainId"] == park.genesis.chain_id
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert http.get("/console/api/me").json()["fingerprint"] == fingerprint
    assert http.delete("/console/api/session").status_code == 204
    http.cookies.clear()
    assert http.get("/console/api/me").status_code == 401


def test_refused_sign_ins(node: dict) -> None:
    park, http = node["park"], node["http"]
    stranger = PrivateKey.from_seed(b"s" * 32)
    refused = sign_in(node, stranger)
    assert refused.status_code == 401
    assert "no registered" in refused.json()["message"]

    key, _ = park.user_key(ORCHARD)
    challenge = http.post("/console/api/challenge").json()
    # Signed for another node (authority) or another chain: not this challenge's bytes.
    wrong = signed_bytes(challenge["chain_id"], "127.0.0.1:1", challenge["challenge"])
    body = {"challenge": challenge["challenge"], "signature": codec.b64encode(key.sign(wrong))}
    assert http.post("/console/api/session", json=body).status_code == 401
    # A challenge is spent by its first answer, whatever the outcome.
    right = signed_bytes(challenge["chain_id"], challenge["authority"], challenge["challenge"])
    body["signature"] = codec.b64encode(key.sign(right))
    again = http.post("/console/api/session", json=body)
    assert again.status_code == 401 and "expired" in again.json()["message"]
    # A ledger transaction's bytes never pass for a sign-in, nor the reverse.
    assert not right.startswith(codec.PREFIX) and not right.startswith(b'"')

    bad = http.post("/console/api/session", json={"challenge": "x", "signature": "not base64"})
    assert bad.status_code == 400
    assert http.post("/console/api/session", content=b"[1,2").status_code == 400
    assert http.get("/console/api/lot", params={"id": "x"}).status_code == 401


@pytest.mark.skipif(shutil.which("node") is None, reason="node (JavaScript) is not installed")
def test_the_console_canonical_json_is_the_ledgers() -> None:
    """The vendored RFC 8785 library, run by node, gives the bytes ledger.codec gives for
    what the forms build: nested objects, Chinese text, decimals, big and small numbers."""
    samples = [
        {"b": 1, "a": [3.1, 5.8, 0.6, 12000, 1e21, 1.5e-7, -0.0], "中文": "赣南脐橙 ≤ 1"},
        {"quantityList": [{"epcClass": "https://id.gs1.org/01/06901234000122/10/L1"}]},
        {"e\u00e9": {"\u20ac": True, "\U0001f600": None, "": 'x\n"\\'}, "A": 2**53 - 1},
    ]
    script = (
        "global.window = {};"
        f"require({json.dumps(str(STATIC / 'canonicalize.js'))});"
        "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(data.map(window.canonicalize)));"
    )
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(samples),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for sample, text in zip(samples, json.loads(out), strict=True):
        assert text.encode() == codec.canonical(json.loads(json.dumps(sample)))


def test_a_bulk_sheet_is_read_into_events_and_refusals_by_line(node: dict) -> None:
    park, http = node["park"], node["http"]
    csv = (
        "type,eventTime,action,bizStep,quantityList\n"
        "ObjectEvent,2026-12-01T08:00:00+08:00,ADD,commissioning,"
        "https://id.gs1.org/01/06907890000346/10/B1;10\n"
        "ObjectEvent,2026-12-01T08:00:01+08:00,ADD,picking_by_hand,"
        "https://id.gs1.org/01/06907890000346/10/B2;10\n"
        "ObjectEvent,2026-12-01T08:00:02+08:00,ADD,commissioning,"
        "https://id.gs1.org/01/06907890000346/10/B3;lots\n"
    )
    headers = {"Content-Type": "text/csv"}
    assert http.post("/console/api/bulk", content=csv, headers=headers).status_code == 401
    key, _ = park.user_key("ganzhou-mask-factory")
    assert sign_in(node, key).status_code == 200
    sheet = http.post("/console/api/bulk", content=csv, headers=headers).json()
    assert sheet["total"] == 3
    assert [e["line"] for e in sheet["events"]] == [2]
    event = sheet["events"][0]["payload"]["event"]
    assert event["bizStep"] == "commissioning" and event["eventTimeZoneOffset"] == "+08:00"
    refusals = {r["line"]: r for r in sheet["refusals"]}
    assert refusals[3]["field"] == "bizStep" and "CBV" in refusals[3]["message"]
    assert refusals[4]["field"] == "quantityList"
    latin = "type,eventTime\nObjectEvent,\xe9\n".encode("latin-1")
    assert http.post("/console/api/bulk", content=latin, headers=headers).status_code == 400
    wrong = http.post("/console/api/bulk", content=csv, headers={"Content-Type": "image/png"})
    assert wrong.status_code == 415
    headless = http.post("/console/api/bulk", content="a,b\n1,2\n", headers=headers)
    assert headless.status_code == 400
    http.delete("/console/api/session")
    http.cookies.clear()
