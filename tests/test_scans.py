"""Scans as ledger facts, in one process: what counts as a person's scan, sales as the
strongest signal, a node's batches of observations through the block rule, and a
consumer's report (举报) reaching the regulator's audit API.

Must-show (b) a code sold twice shows the copied page, (c) link previews and HEAD do not
change the count, (d) a report reaches the audit API. Four real nodes agreeing on the
count across restarts: tests/test_scans_cluster.py."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.codes.service import CodesService, CodesSettings, install
from api.histories import CONTEXT, Case, lang, record_cases, sgln
from api.routes import audit
from ledger.consortium import Consortium
from ledger.errors import LedgerError, NotPermittedError
from ledger.identity import Credential
from ledger.store import Store
from ledger.tx import Transaction
from nodes.devchain import DevChain
from nodes.scanbatch import ScanBatcher
from nodes.solo import SoloNode
from sdk.audit import AuditClient
from sdk.signing import Identity
from tests.chains import object_event
from traceability.codes.digital_link import DigitalLink
from traceability.codes.observations import (
    TX_TYPE,
    Observations,
    Photo,
    check_signer,
    parse_payload,
)
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"scan tests")
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126 Mobile Safari"
WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI"
)
EN = {"Accept-Language": "en", "User-Agent": PHONE}
ZH = {"Accept-Language": "zh-CN", "User-Agent": PHONE}
PREVIEWS = (
    "WhatsApp/2.23.18.78 i",
    "Mozilla/5.0 (iPhone) WeChatShareExtension/8.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "",
)
#: Sales recorded beside the three cases: mask code index -> pharmacies that sold it.
SALES = {4: ["Yuexiu pharmacy, Guangzhou"], 5: ["Yuexiu pharmacy, Guangzhou", "Street stall"]}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    park: Consortium
    node: SoloNode
    client: TestClient
    codes: CodesService
    cases: dict[str, Case]
    clock: Clock

    @property
    def masks(self) -> list[DigitalLink]:
        return self.cases["mask"].codes

    def path(self, link: DigitalLink) -> str:
        uri = urlsplit(link.uri(HOST))
        return uri.path + (f"?{uri.query}" if uri.query else "")

    def get(self, link: DigitalLink, headers: dict[str, str] | None = None, **params):
        return self.client.get(self.path(link), headers=headers or EN, params=params or None)

    def count(self, link: DigitalLink) -> int:
        """The scan count as a program reads it (a read that counts nothing)."""
        return self.get(link, {"Accept": "application/json"}).json()["scans"]["scans"]

    def batcher(self) -> ScanBatcher:
        validator = next(iter(self.node.membership.validator_certs))
        key = self.park.validator_keys[validator]
        return ScanBatcher.for_validator(self.node, self.codes.outbox, validator, key)


def _sale(park: Consortium, code: DigitalLink, place: str, n: int) -> Transaction:
    event = object_event(
        f"sale/{code.serial}/{n}",
        **{
            "@context": CONTEXT,
            "eventTime": f"2026-11-17T1{n}:00:00+08:00",
            "action": "OBSERVE",
            "bizStep": "retail_selling",
            "disposition": "retail_sold",
            "epcList": [code.instance_id],
            "readPoint": {"id": sgln("0690654", 52)},
            "pt:region": "CN-GD",
            "pt:place": lang(place, place),
        },
    )
    return park.sign_tx("retail-pharmacy-chain", "epcis.event", {"event": event})


@pytest.fixture(scope="module")
def recorded(park: Consortium, tmp_path_factory) -> tuple[str, dict[str, Case]]:
    path = tmp_path_factory.mktemp("scans") / "node.db"
    store = Store(f"sqlite:///{path}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    chain = DevChain.resume(park.genesis, park.validator_keys, store)
    for index, places in SALES.items():
        for n, place in enumerate(places):
            chain.commit_block([_sale(park, cases["mask"].codes[index], place, n)])
    store.close()
    return f"sqlite:///{path}", cases


@pytest.fixture
def world(park: Consortium, recorded, tmp_path) -> Iterator[World]:
    url, cases = recorded
    copy = tmp_path / "node.db"
    shutil.copy(urlsplit(url).path, copy)
    store = Store(f"sqlite:///{copy}")
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    audit.mount(app)
    clock = Clock()
    codes = install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,), clock=clock))
    with TestClient(app) as client:
        yield World(park, node, client, codes, cases, clock)
    store.close()


# -- (c) only people's scans count ------------------------------------------------------------


def test_must_show_c_previews_head_and_programs_do_not_count(world: World) -> None:
    code = world.masks[2]
    assert world.get(code).status_code == 200
    assert world.count(code) == 1
    for agent in PREVIEWS:
        answer = world.get(code, {"User-Agent": agent})
        assert answer.status_code == 200, agent
    world.client.head(world.path(code), headers=EN)
    for media in ("application/json", "application/ld+json", "application/linkset+json"):
        world.get(code, {**EN, "Accept": media})
    for link_type in ("gs1:verificationService", "linkset", "all", "gs1:traceability"):
        world.client.get(world.path(code), headers=EN, params={"linkType": link_type})
    assert world.count(code) == 1
    page = world.get(code, {**EN, "User-Agent": WECHAT})  # a shopper scanning in WeChat counts
    assert "Scanned 2 times" in page.text
    assert [e.channel for e in world.codes.outbox.pending(code.instance_id)] == ["web", "wechat"]


def test_the_region_form_is_the_same_scan(world: World) -> None:
    code = world.masks[3]
    world.get(code)
    scan = world.codes.outbox.pending(code.instance_id)[0]
    form = world.get(code, scan=scan.id, region="CN-GD")
    assert "your province was added to this scan" in form.text
    assert world.count(code) == 1
    assert world.get(code, {"Accept": "application/json"}).json()["scans"]["warnings"] == []


# -- (b) sales first -----------------------------------------------------------------------------


def test_must_show_b_a_code_sold_twice_is_copied(world: World) -> None:
    unsold = world.get(world.masks[6], ZH).text
    assert "尚未售出" in unsold and 'id="copy-warning"' not in unsold
    once = world.get(world.masks[4]).text
    assert "Sold once, at Yuexiu pharmacy, Guangzhou on 2026-11-17." in once
    assert 'id="copy-warning"' not in once
    twice = world.get(world.masks[5], ZH)
    assert twice.status_code == 200
    assert 'id="copy-warning"' in twice.text
    assert "已售出 2 次：此码已被复制。" in twice.text
    assert "账本记录此件商品被售出 2 次：此码已被复制。" in twice.text
    english = world.get(world.masks[5]).text
    assert "Sold 2 times: this code has been copied." in english
    doc = world.get(world.masks[5], {"Accept": "application/json"}).json()["scans"]
    assert (doc["sold"], len(doc["sales"]), doc["warnings"][0]["kind"]) == (
        "sold_again",
        2,
        "sold_again",
    )


# -- the batches: block rule, commit, verdict from the chain --------------------------------------


def test_a_batch_commits_and_the_count_comes_from_the_chain(world: World) -> None:
    code = world.masks[7]
    world.get(code, region="CN-JX")
    world.get(code, region="CN-GD")
    batcher = world.batcher()
    tx_id = batcher.step()
    assert tx_id is not None and world.node.status(tx_id).state == "pending"
    assert batcher.step() == tx_id  # one batch in flight; nothing sealed twice
    world.node.produce()
    assert batcher.step() is None  # committed: the outbox lets go of it
    assert world.codes.outbox.count() == 0
    assert world.count(code) == 2
    stored = world.node.store.tx(tx_id)
    assert stored is not None and stored.tx.type == TX_TYPE
    assert [s["region"] for s in stored.tx.payload["scans"]] == ["CN-JX", "CN-GD"]
    assert world.node.produce() is None  # idle: no batch, no block


def test_a_lost_batch_is_sent_again_unchanged(world: World) -> None:
    """After a restart the mempool is empty: the outbox's sealed envelope goes again."""
    world.get(world.masks[8])
    batcher = world.batcher()
    tx_id = batcher.step()
    world.node.mempool.remove([tx_id])
    assert world.node.status(tx_id).state == "unknown"
    assert batcher.step() == tx_id
    world.node.produce()
    batcher.step()
    assert world.node.status(tx_id).state == "committed"
    assert world.count(world.masks[8]) == 1


def test_only_a_validator_node_may_sign_observations(world: World) -> None:
    batch = {"scans": [], "regions": [], "reports": []}
    batch["scans"].append(
        {
            "id": "0" * 32,
            "code": world.masks[9].instance_id,
            "at": "2026-11-20T01:00:00.000Z",
            "region": None,
            "channel": "web",
        }
    )
    person = world.park.sign_tx("park-committee", TX_TYPE, batch)
    with pytest.raises(NotPermittedError, match="validator node"):
        check_signer(person, world.node.membership)
    with pytest.raises(NotPermittedError, match="validator node"):
        world.node.submit(person)


# -- (d) 举报 reaches the regulator ----------------------------------------------------------------


def _photo() -> bytes:
    image = Image.effect_noise((1600, 1200), 60).convert("RGB")
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (22.0, 33.0, 0.0)}  # a GPS position, as phones write it
    image.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def test_must_show_d_a_report_reaches_the_audit_api(world: World) -> None:
    code = world.masks[10]
    page = world.get(code, ZH).text
    assert 'action="/v1/reports"' in page and "举报此商品" in page
    sent = world.client.post(
        "/v1/reports",
        headers=ZH,
        data={"code": code.uri(HOST), "region": "CN-SH", "note": "包装印刷模糊", "lang": "zh"},
        files={"photo": ("fake.jpg", _photo(), "image/jpeg")},
    )
    assert sent.status_code == 202 and "举报已收到" in sent.text
    program = world.client.post(
        "/v1/reports", data={"code": code.uri(HOST)}, headers={"Accept": "application/json"}
    )
    assert program.status_code == 202 and program.json()["photo"] is None
    world.batcher().step()
    world.node.produce()
    holder = world.park.user("market-supervision-bureau")
    regulator = Identity(holder.key, holder.fingerprint, Credential.from_pem(holder.certificate))
    client = AuditClient("http://t", identity=regulator, http=world.client)
    reports = client.reports(code=code.uri(HOST))["reports"]
    assert len(reports) == 2
    shown = next(r for r in reports if r["photo"])
    assert (shown["code"], shown["region"], shown["note"]) == (
        code.instance_id,
        "CN-SH",
        "包装印刷模糊",
    )
    assert shown["ledger"]["height"] == world.node.height
    photo = client.report_photo(shown["photoSha256"])
    image = Image.open(io.BytesIO(photo))
    assert image.format == "JPEG" and max(image.size) <= 960
    assert not image.getexif()  # the phone's GPS position never reached the ledger
    assert world.client.get("/v1/audit/reports").status_code == 403  # regulators only


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"code": "not a link"}, 400),
        ({"code": "https://id.gs1.org/01/06907890000347/21/X"}, 400),
        ({"code": "https://id.gs1.org/01/06907890000346/21/X", "region": "XX-YY"}, 400),
        ({"code": "https://id.gs1.org/01/06907890000346/21/X", "note": "x" * 501}, 422),
    ],
)
def test_a_bad_report_is_refused_clearly(world: World, fields: dict, status: int) -> None:
    answer = world.client.post("/v1/reports", data=fields, headers={"Accept": "application/json"})
    assert answer.status_code == status, answer.text
    assert world.codes.outbox.count() == 0


def test_a_photo_that_is_not_an_image_is_refused(world: World) -> None:
    answer = world.client.post(
        "/v1/reports",
        data={"code": world.masks[11].uri(HOST)},
        files={"photo": ("x.jpg", b"\xff\xd8\xff" + b"0" * 5000, "image/jpeg")},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400 and "photo" in answer.json()["message"]


def test_scans_older_than_the_region_grace_take_no_region(world: World) -> None:
    """A region note made long after its scan changes nothing, on the chain too."""
    code = world.masks[11]
    world.get(code)
    scan = world.codes.outbox.pending(code.instance_id)[0]
    world.clock.now += timedelta(hours=2)
    form = world.get(code, scan=scan.id, region="CN-XJ")
    assert "your province was added" not in form.text
    assert world.count(code) == 2


# -- the block rule's shape check -------------------------------------------------------------

AT = "2026-11-20T01:00:00.000Z"
ITEM = "https://id.gs1.org/01/06907890000346/21/ABC"


def _scan_entry(**changes: object) -> dict:
    return {"id": "c" * 32, "code": ITEM, "at": AT, "region": None, "channel": "web"} | changes


def _report_entry(**changes: object) -> dict:
    return {"id": "d" * 32, "code": ITEM, "at": AT, "region": None, "note": "", "photo": None} | (
        changes
    )


_JPEG = Photo(b"\xff\xd8\xff" + b"\x00" * 100).to_json()


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"scans": [], "regions": [], "reports": []}, "no observation"),
        ({"scans": [_scan_entry()], "regions": []}, "missing field(s) reports"),
        ({"scans": [_scan_entry()] * 2, "regions": [], "reports": []}, "used twice"),
        ({"scans": [_scan_entry(code=ITEM.replace("/21/", "/10/L/21/"))]}, "canonical key"),
        ({"scans": [_scan_entry(code=ITEM.replace("/21/ABC", "/10/L"))]}, "serialised item"),
        ({"scans": [_scan_entry(region="cn-gd")]}, "region code"),
        ({"scans": [_scan_entry(channel="sms")]}, "channel"),
        ({"scans": [_scan_entry(at="2026-11-20T01:00:00Z")]}, "UTC time"),
        ({"scans": [_scan_entry(id="C" * 32)]}, "hex digits"),
        ({"scans": [_scan_entry(extra=1)]}, "unknown field"),
        ({"reports": [_report_entry(note="x" * 501)]}, "at most 500"),
        ({"reports": [_report_entry(photo=_JPEG | {"sha256": "0" * 64})]}, "SHA-256"),
        ({"reports": [_report_entry(photo=_JPEG | {"type": "image/png"})]}, "image/jpeg"),
        (
            {"reports": [_report_entry(photo=Photo(b"GIF89a" + b"\x00" * 9).to_json())]},
            "JPEG image",
        ),
        (
            {"reports": [_report_entry(photo=Photo(b"\xff\xd8\xff" * 14_000).to_json())]},
            "at most 40000 bytes",
        ),
        ({"scans": [_scan_entry(id=f"{i:032x}") for i in range(501)]}, "at most 500"),
    ],
)
def test_the_block_rule_refuses_a_malformed_batch(payload: dict, words: str) -> None:
    filled = (
        payload if "regions" in payload else {"scans": [], "regions": [], "reports": []} | payload
    )
    with pytest.raises(LedgerError, match=re.escape(words)):
        parse_payload(filled)
    good = parse_payload({"scans": [_scan_entry()], "regions": [], "reports": []})
    assert isinstance(good, Observations) and good.scans[0].code == ITEM


def test_a_scan_in_two_committed_batches_counts_once(world: World) -> None:
    """A node that resends its entries in a new batch (its first one lost, or committed
    unseen) cannot double a scan: an id counts once, on every node."""
    code = world.masks[9]
    payload = {"scans": [_scan_entry(code=code.instance_id)], "regions": [], "reports": []}
    batcher = world.batcher()
    for _ in range(2):
        tx = Transaction.create(
            batcher.key,
            chain_id=world.park.genesis.chain_id,
            type=TX_TYPE,
            payload=payload,
            signer=batcher.signer,
        )
        world.node.submit(tx)
        world.node.produce()
        assert world.node.status(tx.id).state == "committed"
    assert world.count(code) == 1
