"""The consumer page and its JSON are computed once per chain height and kept
(api/codes/pagecache.py): whatever the chain or the scans change shows on the very next
request. A transaction's answer is kept once a later block fixes its certificate
(api/receiptcache.py), and never before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from api.app import create_app
from api.codes.i18n import Translator
from api.codes.service import CodesSettings, install
from api.histories import CONTEXT, Case, record_cases, sgln
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode
from traceability.codes.copies import CopyRules
from traceability.codes.digital_link import DigitalLink
from traceability.codes.observations import Scan
from traceability.codes.outbox import Outbox
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"answer cache tests")
EN = {"Accept-Language": "en-US,en;q=0.9", "User-Agent": "Mozilla/5.0 (iPhone) Safari/605"}
JSON = {**EN, "Accept": "application/json"}
MAX_SCANS = 3


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@dataclass
class Site:
    client: TestClient
    node: SoloNode
    park: Consortium
    cases: dict[str, Case]

    def path(self, link: DigitalLink) -> str:
        uri = urlsplit(link.uri(HOST))
        return uri.path + (f"?{uri.query}" if uri.query else "")

    def page(self, link: DigitalLink) -> str:
        answer = self.client.get(self.path(link), headers=EN)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"  # every look is a scan
        return answer.text

    def document(self, link: DigitalLink) -> dict:
        answer = self.client.get(self.path(link), headers=JSON)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def commit(self, org: str, tx_type: str, payload: dict) -> int:
        tx = self.park.sign_tx(org, tx_type, payload, self.node.chain.next_time())
        self.node.submit(tx)
        block = self.node.produce()
        assert block is not None and [t.id for t in block.txs] == [tx.id]
        return block.height


@pytest.fixture
def site(park: Consortium, tmp_path) -> Iterator[Site]:
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    cases = record_cases(park, store, [RESOLVER.public], HOST, boxes=2, jars=2, masks=3)
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    rules = CopyRules(max_scans=MAX_SCANS)
    install(
        app,
        CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,), rules=rules, clock=Clock()),
    )
    with TestClient(app, base_url=f"http://{HOST}") as client:
        yield Site(client, node, park, cases)
    store.close()


def _sale(code: DigitalLink, event_id: str) -> dict:
    """A retail sale of `code` (`event_id`: two hex digits of its eventID)."""
    pharmacy = sgln("0690654", 52)
    return {
        "event": {
            "@context": CONTEXT,
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:5f0c1e9a-0000-4000-8000-0000000000{event_id}",
            "eventTime": "2026-11-18T15:00:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "action": "OBSERVE",
            "bizStep": "retail_selling",
            "disposition": "retail_sold",
            "epcList": [code.uri(HOST)],
            "readPoint": {"id": pharmacy},
            "bizLocation": {"id": pharmacy},
            "pt:region": "CN-GD",
            "pt:place": [{"@value": "Sold at the Yuexiu pharmacy", "@language": "en"}],
        }
    }


def test_a_new_event_on_the_product_shows_on_the_next_request(site: Site) -> None:
    code = site.cases["mask"].codes[0]
    before_page, before_doc = site.page(code), site.document(code)
    assert "Sold at the Yuexiu pharmacy" not in before_page
    steps = len(before_doc["journey"]["steps"])
    height = site.commit(
        "retail-pharmacy-chain",
        "epcis.event",
        _sale(code, "a1"),
    )
    page, doc = site.page(code), site.document(code)
    assert "Sold at the Yuexiu pharmacy" in page
    assert len(doc["journey"]["steps"]) == steps + 1
    assert doc["ledger"]["height"] == height
    assert doc["scans"]["sales"] and doc["authenticity"]["status"] == "genuine"
    # a second sale of one item is a copied code, at once
    site.commit(
        "retail-pharmacy-chain",
        "epcis.event",
        _sale(code, "a2"),
    )
    page = site.page(code)
    assert 'id="copy-warning"' in page and "warn-sold_again" in page
    assert 'class="verdict verdict-genuine"' not in page
    assert [w["kind"] for w in site.document(code)["scans"]["warnings"]] == ["sold_again"]


def test_a_recall_replaces_the_genuine_verdict_on_the_next_request(site: Site) -> None:
    mask = site.cases["mask"]
    code = mask.codes[1]
    assert 'class="verdict verdict-genuine"' in site.page(code)
    assert site.document(code)["recall"] is None
    payload = {
        "lot": mask.code.lot_id,
        "reason": "filtration below the standard",
        "units": [c.instance_id for c in mask.codes],
    }
    height = site.commit("market-supervision-bureau", "recall", payload)
    page = site.page(code)
    assert 'class="verdict verdict-recalled"' in page
    assert 'class="verdict verdict-genuine"' not in page
    assert "filtration below the standard" in page
    doc = site.document(code)
    assert doc["recall"]["recalled"] is True and doc["recall"]["height"] == height


def test_scans_that_make_a_code_copied_show_at_once_on_a_cached_page(site: Site) -> None:
    code = site.cases["orange"].codes[0]
    height = site.node.height
    for n in range(1, MAX_SCANS + 1):
        page = site.page(code)
        assert 'class="verdict verdict-genuine"' in page and "copy-warning" not in page
        assert _share(page) == _share_text("genuine", page)
        assert site.document(code)["scans"]["scans"] == n  # JSON asks, it does not scan
    page = site.page(code)
    assert 'id="copy-warning"' in page and "warn-many_scans" in page
    assert _share(page) == _share_text("copied", page)  # the share text follows the verdict
    doc = site.document(code)
    assert doc["scans"]["scans"] == MAX_SCANS + 1
    assert [w["kind"] for w in doc["scans"]["warnings"]] == ["many_scans"]
    assert site.node.height == height  # all of it at one chain height
    # each page carries its own scan, in the region form and the language link
    first, second = site.page(code), site.page(code)
    scan_ids = [p.split('name="scan" value="')[1].split('"')[0] for p in (first, second)]
    assert len(set(scan_ids)) == 2 and all(len(s) == 32 for s in scan_ids)
    assert f"scan={scan_ids[1]}" in second and "<!--pt:" not in second


def _share(page: str) -> str:
    return page.split('<meta property="og:description" content="')[1].split('"')[0]


def _share_text(verdict: str, page: str) -> str:
    title = page.split('<h1 id="product-name">')[1].split("<")[0]
    return str(escape(Translator("en")(f"share.{verdict}", product=title)))


def test_a_transaction_answer_is_kept_only_once_its_certificate_is_fixed(site: Site) -> None:
    code = site.cases["mask"].codes[2]
    height = site.commit(
        "retail-pharmacy-chain",
        "epcis.event",
        _sale(code, "b1"),
    )
    tx_id = next(iter(site.node.store.block(height).txs)).id
    url = f"/v1/transactions/{tx_id}"
    head = site.client.get(url)
    assert head.status_code == 200 and head.headers["cache-control"] == "no-cache"
    assert "etag" not in head.headers
    assert site.client.get(f"{url}/receipt").headers["cache-control"] == "no-cache"
    site.commit(
        "retail-pharmacy-chain",
        "epcis.event",
        _sale(code, "b2"),
    )
    fixed = site.client.get(url)
    assert fixed.status_code == 200 and "immutable" in fixed.headers["cache-control"]
    # the certificate the next block fixed, not the node's own from before
    certificate = site.node.store.commit(height)
    assert certificate is not None
    assert fixed.json()["receipt"]["commit"] == certificate.to_json()
    assert site.client.get(url).content == fixed.content
    again = site.client.get(url, headers={"If-None-Match": fixed.headers["etag"]})
    assert again.status_code == 304 and not again.content
    receipt = site.client.get(f"{url}/receipt")
    assert "immutable" in receipt.headers["cache-control"]
    assert json.loads(receipt.content) == fixed.json()["receipt"]


def test_the_outbox_keeps_in_memory_what_its_database_holds(site: Site, tmp_path) -> None:
    code = site.cases["mask"].codes[0].instance_id
    assert code is not None
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    outbox = Outbox(url)
    assert outbox.pending(code) == []  # read, and kept, before any entry
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    first = Scan("a" * 32, code, at, None, "web")
    second = Scan("b" * 32, code, at + timedelta(seconds=1), "CN-GD", "wechat")
    outbox.add(second)
    outbox.add(first)  # an older one after a newer: kept in the database's order
    assert outbox.pending(code) == Outbox(url).pending(code) == [first, second]
    rows = [row for row, _ in outbox.waiting(100_000)]
    outbox.seal("c" * 64, "{}", rows)
    outbox.release("c" * 64)  # the batch can never commit: the entries wait again
    assert outbox.pending(code) == [first, second]
    outbox.seal("d" * 64, "{}", rows)
    outbox.done("d" * 64)  # committed: the chain holds them now
    assert outbox.pending(code) == Outbox(url).pending(code) == []
