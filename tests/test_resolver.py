"""The Digital Link resolver: consumer pages of the three cases in both languages (journey
steps, signers, block heights), JSON and JSON-LD, link types, the shorter lot and
product forms, not-genuine and malformed codes, and copied-code detection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.codes.i18n import Translator
from api.codes.service import CodesSettings, install
from api.histories import Case, record_cases
from ledger import codec
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode
from traceability.codes.digital_link import DigitalLink
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"
RESOLVER = ResolverKey.from_seed(b"resolver tests")
EN = {"Accept-Language": "en-US,en;q=0.9"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    client: TestClient
    cases: dict[str, Case]
    clock: Clock
    park: Consortium

    def path(self, link: DigitalLink) -> str:
        uri = urlsplit(link.uri(HOST))
        return uri.path + (f"?{uri.query}" if uri.query else "")

    def get(self, link: DigitalLink | str, headers: dict[str, str] | None = None, **params):
        path = link if isinstance(link, str) else self.path(link)
        return self.client.get(
            path, headers=EN if headers is None else headers, params=params or None
        )


@pytest.fixture(scope="module")
def ledger_db(park: Consortium, tmp_path_factory) -> tuple[str, dict[str, Case]]:
    path = tmp_path_factory.mktemp("resolver") / "node.db"
    store = Store(f"sqlite:///{path}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    store.close()
    return f"sqlite:///{path}", cases


def open_world(park: Consortium, url: str, cases, keys=(RESOLVER,)) -> Iterator[World]:
    store = Store(url)
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    clock = Clock()
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=keys, clock=clock))
    with TestClient(app) as client:
        yield World(client, cases, clock, park)
    store.close()


@pytest.fixture
def world(park: Consortium, ledger_db) -> Iterator[World]:
    yield from open_world(park, *ledger_db)


# -- what each page must show ----------------------------------------------------------------

#: Steps of each scanned item's journey (builder labels), in order.
JOURNEYS = {
    "orange": [
        "plot",
        "harvest",
        "codes",
        "packing",
        "inspection",
        "palletising",
        "shipping",
        "retail",
    ],
    "notoginseng": [
        "planting-A",
        "planting-B",
        "harvest-A",
        "harvest-B",
        "processing",
        "inspection",
        "codes",
        "distribution",
        "pharmacy",
    ],
    # the scanned mask is in box 1: box 2's packing is not part of its journey
    "mask": ["production", "codes", "box-1", "carton", "inspection", "shipping", "pharmacy"],
}
KIND = {
    "plot": "origin",
    "planting-A": "origin",
    "planting-B": "origin",
    "harvest": "harvest",
    "harvest-A": "harvest",
    "harvest-B": "harvest",
    "production": "production",
    "processing": "processing",
    "codes": "codes",
    "packing": "packing",
    "palletising": "packing",
    "box-1": "packing",
    "carton": "packing",
    "inspection": "inspection",
    "shipping": "shipping",
    "distribution": "shipping",
    "retail": "retail",
    "pharmacy": "receiving",
}
KIND_WORDS = {
    "en": {
        "origin": "Origin",
        "harvest": "Harvest",
        "production": "Production",
        "processing": "Processing",
        "codes": "Serial codes issued",
        "inspection": "Inspection",
        "packing": "Packing",
        "shipping": "Shipping",
        "receiving": "Received",
        "retail": "Retail",
    },
    "zh": {
        "origin": "产地登记",
        "harvest": "采收",
        "production": "生产",
        "processing": "加工",
        "codes": "赋码（发放序列号）",
        "inspection": "检验检测",
        "packing": "包装",
        "shipping": "运输",
        "receiving": "收货",
        "retail": "零售上架",
    },
}
#: Facts each page must state, by language.
DETAILS = {
    ("orange", "en"): [
        "Gannan navel oranges, 5 kg gift box",
        "Anyuan Sanbaishan Orchard",
        "P07",
        "Newhall navel orange",
        "Chlorpyrifos residue",
        "Lead (Pb)",
        "JX-GAP-2026-0412",
        "JC-2026-11-0457",
        "3.1–5.8 °C",
        "Futian store, Shenzhen",
        "Harvest date</dt><dd>2026-11-03",
        "Country of origin</dt><dd>China",
    ],
    ("orange", "zh"): [
        "赣南脐橙 5公斤礼盒",
        "安远三百山果园",
        "纽荷尔脐橙",
        "毒死蜱残留",
        "铅",
        "合格",
        "3.1–5.8 °C",
        "深圳福田门店",
        "采收日期</dt><dd>2026-11-03",
        "原产国</dt><dd>中国",
    ],
    ("notoginseng", "en"): [
        "Wenshan notoginseng powder, 100 g jar",
        "Wenshan Maguan notoginseng base",
        "A12",
        "B04",
        "2023-10-15",
        "dried at 60 °C for 48 h",
        "Quintozene residue",
        "not detected",
        "Cadmium (Cd)",
        "Mercury (Hg)",
        "JC-2026-11-0213",
        "Tianhe pharmacy, Guangzhou",
    ],
    ("notoginseng", "zh"): [
        "文山三七粉 100克罐装",
        "文山马关三七种植基地",
        "三七（三年生）",
        "60 °C 烘干48小时",
        "五氯硝基苯残留",
        "未检出",
        "镉",
        "汞",
        "广州天河药房",
    ],
    ("mask", "en"): [
        "KN95 protective mask",
        "GB 2626-2019 KN95",
        "Filtration efficiency",
        "97.8 %",
        "JC-2026-11-0688",
        "the container with SSCC 0690789.1000000011",
        "the container with SSCC 0690789.2000000018",
        "Yuexiu pharmacy, Guangzhou",
        "Expiry date</dt><dd>2029-11-11",
    ],
    ("mask", "zh"): [
        "KN95 防护口罩",
        "过滤效率",
        "吸气阻力",
        "3号生产线",
        "物流单元（SSCC 0690789.1000000011）",
        "广州越秀药房",
        "有效期至</dt><dd>2029-11-11",
    ],
}


def steps_of(html: str) -> list[str]:
    """The markup of each journey step, in page order."""
    if '<ol class="timeline">' not in html:
        return []
    timeline = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return ['<li class="step' + part for part in timeline.split('<li class="step')[1:]]


def org_name(park: Consortium, org: str, lang: str) -> str:
    o = park.genesis.membership().organizations[org]
    return o.name_zh if lang == "zh" else o.name.replace("'", "&#39;")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", ["orange", "notoginseng", "mask"])
def test_consumer_page_shows_the_verified_journey(world: World, name: str, lang: str) -> None:
    case = world.cases[name]
    page = world.get(case.code, EN if lang == "en" else ZH)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in html
    assert ("正品码" if lang == "zh" else "Genuine code") in html
    batch_height = case.batch_step.height
    assert (f"区块 #{batch_height}" if lang == "zh" else f"in block #{batch_height}") in html
    items = steps_of(html)
    expected = [case.step(label) for label in JOURNEYS[name]]
    assert len(items) == len(expected)
    proof = html.split('id="ledger-proof"', 1)[1]
    for item, step in zip(items, expected, strict=True):
        assert f'data-height="{step.height}"' in item, step.label
        assert f'<strong class="signer">{org_name(world.park, step.org, lang)}</strong>' in item
        assert f"<h3>{KIND_WORDS[lang][KIND[step.label]]}" in item
        assert "/receipt" not in item  # a shopper never lands on raw JSON
        assert f'data-tx="{step.tx.id}" data-height="{step.height}"' in proof, step.label
        assert f'<strong class="height">#{step.height}</strong>' in proof
    for fact in DETAILS[(name, lang)]:
        assert fact in html, fact
    # Readable without JavaScript: the one script only verifies receipts in the browser.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/verify.js" defer>']


def test_block_heights_are_the_ledgers(world: World) -> None:
    """The heights the pages show are fixed by the histories: spelled out once."""
    heights = {n: [c.step(s).height for s in JOURNEYS[n]] for n, c in world.cases.items()}
    assert heights == {
        "orange": [1, 2, 3, 4, 5, 6, 7, 8],
        "notoginseng": [9, 10, 11, 12, 13, 14, 15, 16, 17],
        "mask": [18, 19, 20, 22, 23, 24, 25],
    }
    mask = world.get(world.cases["mask"].code).text
    assert 'data-height="21"' not in mask  # the other box


@pytest.mark.parametrize("media", ["application/json", "application/ld+json"])
def test_json_is_the_same_data(world: World, media: str) -> None:
    case = world.cases["notoginseng"]
    answer = world.get(case.code, {**EN, "Accept": media})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media)
    doc = answer.json()
    assert doc["@id"] == case.code.uri(HOST, attributes=False)
    assert doc["@context"]["gs1"] == "https://gs1.org/voc/"
    assert doc["gs1:gtin"] == case.code.gtin
    assert doc["gs1:hasSerialNumber"] == case.code.serial
    assert doc["authenticity"]["status"] == "genuine"
    assert doc["authenticity"]["height"] == case.batch_step.height
    assert doc["authenticity"]["issuedBy"]["organization"] == "notoginseng-processor"
    assert doc["dataAttributes"] == {"17": "281027", "422": "156", "7007": "261020"}
    steps = doc["journey"]["steps"]
    assert [s["ledger"]["height"] for s in steps] == [
        case.step(s).height for s in JOURNEYS["notoginseng"]
    ]
    assert [s["recordedBy"]["organization"] for s in steps] == [
        case.step(s).org for s in JOURNEYS["notoginseng"]
    ]
    inspection = next(s for s in steps if s["kind"] == "inspection")
    assert {r["test"]["en"] for r in inspection["results"]} >= {"Lead (Pb)", "Arsenic (As)"}
    assert {o["plot"] for o in doc["journey"]["origins"]} == {"A12", "B04"}
    # a program's request is not a person's scan: it reads the verdict, counts nothing
    assert (doc["scans"]["scans"], doc["scans"]["sold"]) == (0, "not_sold")
    assert doc["ledger"]["height"] == 25


def test_link_types(world: World) -> None:
    case = world.cases["orange"]
    linkset = world.get(case.code, EN, linkType="linkset")
    assert linkset.status_code == 200
    assert linkset.headers["content-type"].startswith("application/linkset+json")
    item, lot, product = linkset.json()["linkset"]
    assert item["anchor"] == case.code.uri(HOST, attributes=False)
    assert lot["anchor"] == DigitalLink(case.code.gtin, case.code.lot).uri(HOST)
    assert product["anchor"] == f"https://{HOST}/01/{case.code.gtin}"
    assert "https://gs1.org/voc/pip" in item
    assert "https://gs1.org/voc/certificationInfo" in lot  # the lot's inspection report
    assert world.get(case.code, EN, linkType="all").json() == linkset.json()  # deprecated
    assert 'rel="linkset"' in world.get(case.code).headers["link"]
    trace = world.client.get(
        world.path(case.code), params={"linkType": "gs1:traceability"}, follow_redirects=False
    )
    assert trace.status_code == 307
    history = world.client.get(trace.headers["location"])
    assert history.status_code == 200
    assert len(history.json()["events"]) >= 6
    verification = world.get(case.code, linkType="gs1:verificationService")
    assert verification.json()["authenticity"]["status"] == "genuine"
    # a link type the code has none of, at any level: 404, never the default page
    assert world.get(case.code, linkType="gs1:recipeInfo").status_code == 404


def test_lot_and_product_forms(world: World) -> None:
    case = world.cases["orange"]
    lot = DigitalLink(case.code.gtin, case.code.lot)
    page = world.get(lot)
    assert page.status_code == 200
    assert "Lot code" in page.text and "first-scan" not in page.text
    assert len(steps_of(page.text)) == 5  # the lot's, its input lot's and its batch
    product = world.get(f"/01/{case.code.gtin}", ZH)
    assert product.status_code == 200
    assert "账本上的批次" in product.text and case.code.lot in product.text
    short = world.get(f"/01/{case.code.gtin[1:]}")  # GTIN-13 is padded
    assert short.status_code == 200


def test_unknown_codes_are_not_genuine(world: World) -> None:
    case = world.cases["mask"]
    forged = DigitalLink(case.code.gtin, case.code.lot, "0" * 16)
    page = world.get(forged, ZH)
    assert page.status_code == 404
    assert "非正品码" in page.text and "12315" in page.text
    answer = world.get(forged, {"Accept": "application/json"})
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert "not a genuine code" in answer.json()["message"]
    forged_elsewhere = DigitalLink(case.code.gtin, "NO-SUCH-LOT", "0" * 16)
    assert world.get(forged_elsewhere).status_code == 404
    assert world.get("/01/09506000134352").status_code == 404


MALFORMED = [
    ("/01/06907890000347/10/L/21/S", "/01", "gtin-check-digit", "check digit"),
    ("/01/6907890000346/21/ABC/10/L1", "/10", "qualifier-order", "out of order"),
    ("/01/06907890000346/10/L%20X", "/10", "ai-charset", "not allowed"),
    ("/01/06907890000346/10/L%E4%B8%AD", "/10", "ai-charset", "not allowed"),
    ("/01/06907890000346/10/" + "L" * 21, "/10", "ai-length", "1 to 20"),
    ("/01/06907890003/10/L", "/01", "gtin-length", "has 11"),
    ("/01/06907890000346/10", "path", "ai-value-pairs", "no value"),
    ("/01/06907890000346/17/261231", "/17", "ai-not-qualifier", "query string"),
    ("/01/06907890000346/10/L?7007=261399", "?7007", "ai-date", "month"),
    ("/01/06907890000346/10/L?10=X", "?10", "ai-in-query", "path"),
    ("/01/06907890000346/10/L%ZZ", "/10", "percent-encoding", "escape"),
    ("/01/69078900003X6", "/01", "gtin-format", "only digits"),
]


@pytest.mark.parametrize(("path", "field", "rule", "words"), MALFORMED)
def test_malformed_codes_are_400_naming_the_problem(
    world: World, path: str, field: str, rule: str, words: str
) -> None:
    answer = world.get(path, {"Accept": "application/json"})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["error"], body["field"], body["rule"]) == ("invalid_code", field, rule)
    assert words in body["message"]
    page = world.get(path, ZH)
    assert page.status_code == 400
    said = page.text.split('id="problem">', 1)[1].split("</p>", 1)[0]
    assert "非正品码" in page.text and Translator("zh")(f"rule.{rule}") in said
    assert rule not in page.text and "[rule" not in page.text and words not in page.text
    english = world.get(path, EN)
    assert english.status_code == 400 and words in english.text and "[rule" not in english.text


def test_garbage_never_fails_with_500(world: World) -> None:
    for path in (
        "/01/",
        "/01/%",
        "/01/%C3%28/10/x",
        "/01/" + "9" * 3000,
        "/01/06907890000346/10/a/21/b/21/c",
        "/01/06907890000346/22/%00",
        "/01/06907890000346/10/L?linkType=" + "x" * 300,
        "/01/06907890000346/10/L?region=" + "x" * 100,
    ):
        answer = world.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)


# -- scans ----------------------------------------------------------------------------------


def test_first_scan_is_marked_and_later_scans_counted(world: World) -> None:
    code = world.cases["mask"].codes[3]
    first = world.get(code, ZH)
    assert 'id="first-scan"' in first.text and "首次扫码" in first.text
    assert "copy-warning" not in first.text
    world.clock.advance(minutes=5)
    second = world.get(code)
    assert 'id="first-scan"' not in second.text
    assert "Scanned 2 times; first on 2026-11-20." in second.text
    assert "copy-warning" not in second.text


def test_a_code_scanned_too_often_is_flagged(world: World) -> None:
    code = world.cases["orange"].codes[5]
    for _ in range(10):
        assert "copy-warning" not in world.get(code).text
        world.clock.advance(hours=1)
    page = world.get(code, ZH)
    assert 'id="copy-warning"' in page.text
    assert "警告：此码可能被复制" in page.text
    assert "此码已被扫描 11 次，超过单件商品的正常次数（10 次）" in page.text


def test_regions_on_the_items_own_journey_are_no_copy(world: World) -> None:
    """A factory scan in Ganzhou and a pharmacy scan in Guangzhou on one day (~ 600 km)
    are the item's own journey; a scan in Shaanxi, where it never went, is not."""
    code = world.cases["mask"].codes[7]
    assert "first-scan" in world.get(code, region="CN-JX").text
    world.clock.advance(hours=3)
    assert "copy-warning" not in world.get(code, EN, region="CN-GD").text
    world.clock.advance(hours=3)
    page = world.get(code, EN, region="CN-SN")  # Xi'an, ~ 900 km from Ganzhou
    assert "copy-warning" in page.text
    assert "It was scanned in Jiangxi and in Shaanxi, about" in page.text
    assert "within 6.0 hours" in page.text
    doc = world.get(code, {"Accept": "application/json"}).json()
    kinds = [w["kind"] for w in doc["scans"]["warnings"]]
    assert kinds == ["distant_regions", "unshipped_region"]
    assert doc["scans"]["warnings"][0]["regions"] == ["CN-JX", "CN-SN"]


def test_far_apart_in_time_is_not_a_copy(world: World) -> None:
    code = world.cases["mask"].codes[8]
    world.get(code, region="CN-JX")
    world.clock.advance(days=3)
    assert "copy-warning" not in world.get(code, region="CN-GD").text


def test_a_code_scanned_where_the_goods_never_went_is_flagged(world: World) -> None:
    code = world.cases["notoginseng"].codes[2]  # grown in Yunnan, sold in Guangdong
    world.get(code, region="CN-YN")
    world.clock.advance(days=30)
    page = world.get(code, ZH, region="CN-HL")
    assert "此码在黑龙江被扫描，但该批货物从未运往该地" in page.text
    assert "实际流向：广东、江西、云南" in page.text


def test_a_copied_code_shows_every_warning(world: World) -> None:
    """A label copied onto fakes: scanned again and again, in Guangzhou and Urumqi."""
    code = world.cases["mask"].codes[1]
    assert 'id="first-scan"' in world.get(code, region="CN-GD").text
    for _ in range(6):
        world.clock.advance(minutes=20)
        world.get(code, region="CN-GD")
        world.clock.advance(minutes=20)
        world.get(code, region="CN-XJ")
    page = world.get(code, EN)
    assert 'id="copy-warning"' in page.text
    for words in (
        "It has been scanned 14 times, more than the 10 expected of one item.",
        "It was scanned in Guangdong and in Xinjiang, about 3,2",
        "It was scanned in Xinjiang, where these goods were never shipped",
        "market supervision authority (hotline 12315)",
    ):
        assert words in page.text


def test_the_page_form_adds_a_region_to_the_same_scan(world: World) -> None:
    code = world.cases["mask"].codes[9]
    page = world.get(code)
    scan_id = re.search(r'name="scan" value="([0-9a-f]{32})"', page.text).group(1)
    assert '<select id="region" name="region" required>' in page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    assert hidden["11"] == "261112" and hidden["17"] == "291111"
    assert hidden["scan"] == scan_id
    form = world.client.get(world.path(code).split("?")[0], params={**hidden, "region": "CN-SH"})
    assert form.status_code == 200
    assert "Thank you: your province was added to this scan." in form.text
    assert "Scanned 1 times" not in form.text and 'id="first-scan"' in form.text
    assert "It was scanned in Shanghai, where these goods were never shipped" in form.text
    # switching language is the same scan too
    other = re.search(r'<a class="lang" href="([^"]+)"', form.text).group(1)
    chinese = world.client.get(other.replace("&amp;", "&"))
    assert 'id="first-scan"' in chinese.text


def test_language_negotiation(world: World) -> None:
    code = world.cases["orange"].codes[11]
    assert "溯源旅程" in world.get(code, {}).text  # no header: Chinese
    assert "Journey" in world.get(code, {"Accept-Language": "fr-FR,en;q=0.8"}).text
    assert "Journey" in world.get(code, {"Accept-Language": "de"}).text
    assert "溯源旅程" in world.get(code, {"Accept-Language": "en;q=0.4,zh-TW;q=0.8"}).text
    assert "溯源旅程" in world.get(code, EN, lang="zh").text


def test_a_node_without_the_resolver_key_cannot_check_serials(park: Consortium, ledger_db) -> None:
    for world in open_world(park, *ledger_db, keys=()):
        page = world.get(world.cases["orange"].code)
        assert page.status_code == 200
        assert "Code not checked" in page.text
        assert len(steps_of(page.text)) == len(JOURNEYS["orange"])


def test_stylesheet(world: World) -> None:
    css = world.client.get("/static/parktrace.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert world.client.get("/static/../app.py").status_code == 404


def test_genesis_is_served_for_phones_to_verify_receipts_against(world: World) -> None:
    answer = world.client.get("/v1/chain/genesis")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.content == codec.canonical(world.park.genesis.to_json())
    assert (
        codec.digest("genesis", answer.json()).hex()
        == world.client.get("/v1/chain").json()["genesis_hash"]
    )
    script = world.client.get("/static/verify.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert world.client.get("/static/share.png").headers["content-type"] == "image/png"
    assert world.client.get("/static/nothing.js").status_code == 404


# -- what the label says, checked against what the batch recorded ---------------------------


def _relabelled(code: DigitalLink, **changes: str | None) -> DigitalLink:
    """The same serial with its label changed: lot (None drops it) or data attributes."""
    lot = changes.pop("lot", code.lot)
    return DigitalLink(code.gtin, lot, code.serial, attributes={**code.attributes, **changes})


def test_a_tampered_expiry_date_is_a_warning_never_genuine_data(world: World) -> None:
    code = world.cases["mask"].codes[4]  # recorded with 11=261112, 17=291111
    page = world.get(_relabelled(code, **{"17": "391111"}), ZH)
    assert page.status_code == 200
    html = page.text
    assert "有效期至</dt><dd>2039-11-11" not in html  # the label's value is not shown as data
    assert "有效期至</dt><dd>2029-11-11" in html  # the ledger's is
    assert "✓ 正品码" not in html
    warning = html.split('id="label-warning">', 1)[1].split("</ul>", 1)[0]
    assert "有效期至：码上为 2039-11-11，账本记录为 2029-11-11" in warning
    assert "码上信息与账本记录不符" in html and "12315" in html
    doc = world.get(_relabelled(code, **{"17": "391111"}), {"Accept": "application/json"}).json()
    assert doc["labelMismatches"] == [{"ai": "17", "scanned": "391111", "recorded": "291111"}]
    english = world.get(_relabelled(code, **{"11": "250101"}), EN).text
    assert "Production date: the code says 2025-01-01, the ledger recorded 2026-11-12" in english


def test_an_attribute_the_batch_did_not_record_is_shown_as_unchecked(world: World) -> None:
    code = world.cases["mask"].codes[4]
    html = world.get(_relabelled(code, **{"15": "300101"}), EN).text
    assert "✓ Genuine code" in html  # nothing recorded was contradicted
    unchecked = html.split('id="unchecked-attributes">', 1)[1].split("</dl>", 1)[0]
    assert "On the label, not recorded on the ledger, not checked" in unchecked
    assert "2030-01-01" in unchecked


def test_a_genuine_serial_scanned_without_its_lot_is_genuine(world: World) -> None:
    case = world.cases["mask"]
    code = _relabelled(case.codes[5], lot=None)
    assert world.path(code).startswith(f"/01/{code.gtin}/21/")
    page = world.get(code, ZH)
    assert page.status_code == 200
    assert "✓ 正品码" in page.text and "非正品码" not in page.text
    assert f'<dd class="id">{case.code.lot}</dd>' in page.text  # the batch's lot
    assert len(steps_of(page.text)) == len(JOURNEYS["mask"])


def test_a_genuine_serial_under_another_lot_warns_of_the_lot(world: World) -> None:
    case = world.cases["mask"]
    page = world.get(_relabelled(case.codes[6], lot="KN95-999999-L9"), ZH)
    assert page.status_code == 200 and "✓ 正品码" not in page.text
    assert f"批次号：码上为 KN95-999999-L9，账本记录为 {case.code.lot}" in page.text


@pytest.fixture(scope="module")
def uncoded_db(park: Consortium, tmp_path_factory) -> tuple[str, dict[str, Case]]:
    """The three cases plus a mask lot recorded through EPCIS only: no codes issued."""
    from api.histories import MASK, Recorder, build_histories, lot_id
    from nodes.devchain import DevChain

    path = tmp_path_factory.mktemp("uncoded") / "node.db"
    store = Store(f"sqlite:///{path}")
    chain = DevChain(park.genesis, park.validator_keys, store)
    cases = build_histories(park, chain, [RESOLVER.public], HOST)
    recorder = Recorder(park, chain, b"uncoded")
    recorder.event(
        cases["mask"],
        "uncoded-lot",
        "ganzhou-mask-factory",
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-18T08:00:00+08:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "epcList": [],
            "quantityList": [{"epcClass": lot_id(MASK, UNCODED_LOT), "quantity": 500}],
            "pt:region": "CN-JX",
            "pt:place": [{"@value": "赣州防护口罩厂 4号线", "@language": "zh"}],
        },
    )
    store.close()
    return f"sqlite:///{path}", cases


UNCODED_LOT = "KN95-261118-L4"


def test_a_recorded_product_without_codes_shows_its_history(park: Consortium, uncoded_db) -> None:
    for world in open_world(park, *uncoded_db):
        code = DigitalLink(world.cases["mask"].code.gtin, UNCODED_LOT, "SOME-PRINTED-SERIAL")
        page = world.get(code, ZH)
        assert page.status_code == 200
        html = page.text
        assert "非正品码" not in html and "账本上有记录，未发放防伪码" in html
        assert "赣州防护口罩厂 4号线" in html  # its history, read from the ledger
        assert len(steps_of(html)) == 1
        english = world.get(code, EN).text
        assert "Recorded on the ledger, no code issued" in english
        assert "Not a genuine code" not in english
        # a serial that no batch of a coded lot holds is still not genuine
        forged = DigitalLink(code.gtin, world.cases["mask"].code.lot, "0" * 16)
        assert world.get(forged, ZH).status_code == 404


def test_head_and_machine_link_requests_are_not_scans(world: World) -> None:
    code = world.cases["orange"].codes[13]
    assert world.client.head(world.path(code)).status_code == 200
    assert world.get(code, linkType="linkset").status_code == 200
    assert world.get(code, {"Accept": "application/linkset+json"}).status_code == 200
    assert 'id="first-scan"' in world.get(code).text  # none of those counted
