"""The producer console in Debian's chromium against a real running consortium (four node
processes): each role signs in with its key file, records its part of the orange lot, the
notoginseng transformation and the mask batch with codes; every event commits and the
consumer page shows it; every request the browser made is captured and none carries the
key (seed bytes in any encoding, the PEM, the passphrase); screenshots at phone and
desktop width in both languages go to test-artifacts/."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from api.codes.sheets import LabelLayout
from sdk.client import ParkTraceClient
from sdk.signing import Identity
from tests.browser import ARTIFACTS, PHONE_USER_AGENT, chromium_browser, needs_chromium
from tests.consolenet import PASSPHRASE, key_file, raw_seed, register_plots, resolver_env
from tests.localnet import LocalNet

pytestmark = needs_chromium

ORANGE_BULK = "06901234000122"
ROOT = "06904567000166"
POWDER = "06904567000234"
MASK = "06907890000346"
ORGS = (
    "gannan-orchard-coop",
    "testing-centre",
    "ganzhou-packing-house",
    "cold-chain-logistics",
    "retail-pharmacy-chain",
    "wenshan-growers",
    "notoginseng-processor",
    "ganzhou-mask-factory",
)


class Capture:
    """Every request the browser sends: URL, headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, request: Any) -> None:
        body = request.post_data_buffer or b""
        self.requests.append((request.url, dict(request.headers), body))


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("console")
    net = LocalNet(root / "net")
    try:
        net.start(env=resolver_env(root))
        url = net.members[0].url
        register_plots(net, url)
        keys = {org: key_file(net, org, root) for org in ORGS}
        yield {"net": net, "url": url, "keys": keys, "root": root}
    finally:
        net.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def capture() -> Capture:
    return Capture()


class Console:
    """One organisation's console in a fresh browser context."""

    def __init__(
        self, browser: Any, url: str, capture: Capture, width: int = 390, lang: str = "en"
    ) -> None:
        self.url = url
        self.context = browser.new_context(
            viewport={"width": width, "height": 900},
            accept_downloads=True,
            locale="zh-CN" if lang == "zh" else "en-GB",
        )
        self.page = self.context.new_page()
        self.page.on("request", capture)
        self.errors: list[str] = []
        self.txs: list[str] = []  # the transactions this console recorded
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, key: Path, lang: str = "en") -> None:
        page = self.page
        page.goto(f"{self.url}/console/?lang={lang}")
        page.set_input_files("#keyfile", str(key))
        page.fill("#passphrase", PASSPHRASE)
        page.click("#signin-button")
        page.wait_for_selector("#signout", timeout=15_000)

    def form(self, name: str) -> None:
        self.page.click(f"#form-{name}")
        self.page.wait_for_selector("#event-form")

    def fill(self, **values: str) -> None:
        for name, value in values.items():
            selector = f'[name="{name}"]'
            element = self.page.locator(selector)
            if element.evaluate("e => e.tagName") == "SELECT":
                element.select_option(value)
            else:
                element.fill(value)

    def record(self, button: str = "#record") -> int:
        """Submit; the block height the node committed it in."""
        page = self.page
        page.click(button)
        page.wait_for_selector(
            "#committed, .error:not(:empty), #queued", state="attached", timeout=40_000
        )
        errors = [e for e in page.locator(".error").all_inner_texts() if e.strip()]
        assert not errors, errors
        self.txs.append(page.get_attribute("#committed", "data-tx") or "")
        return int(page.get_attribute("#committed", "data-height"))

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


def test_every_role_records_its_journey_signed_in_the_browser(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    url, keys, http = consortium["url"], consortium["keys"], consortium["net"].http
    orange_lot = "GN26-P07-1201"
    heights: list[int] = []

    coop = Console(browser, url, capture)
    coop.sign_in(keys["gannan-orchard-coop"])
    coop.form("harvest")
    coop.fill(gtin=ORANGE_BULK, lot=orange_lot, weight="1200", plot="P07", variety="Newhall")
    heights.append(coop.record())
    coop.form("cultivation")
    coop.fill(gtin=ORANGE_BULK, lot=orange_lot, plot="P07", input="Compound fertiliser 15-15-15")
    coop.fill(inputKind="fertiliser", amount="300 kg/ha", appliedOn="2026-12-01")
    coop.record()
    coop.close()

    lab = Console(browser, url, capture)
    lab.sign_in(keys["testing-centre"])
    lab.form("inspection")
    lab.fill(
        gtin=ORANGE_BULK,
        lot=orange_lot,
        location="urn:epc:id:sgln:0690000.00009.0",
        certificateNo="JC-2026-12-0001",
        **{"results.0.test": "Chlorpyrifos", "results.0.value": "0.01"},
        **{"results.0.limit": "≤ 1", "results.0.unit": "mg/kg"},
        **{"results.1.test": "Lead (Pb)", "results.1.value": "0.02"},
        **{"results.1.limit": "≤ 0.1", "results.1.unit": "mg/kg"},
    )
    lab.page.set_input_files(
        "#f-certificate",
        files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 r"}],
    )
    heights.append(lab.record())
    lab.close()

    pallet = "006901234400000017"
    packer = Console(browser, url, capture)
    packer.sign_in(keys["ganzhou-packing-house"])
    packer.form("packing")
    packer.fill(
        parent=pallet,
        lot_gtin=ORANGE_BULK,
        lot_lot=orange_lot,
        lotQuantity="1200",
        location="urn:epc:id:sgln:0690123.00201.0",
    )
    heights.append(packer.record())
    packer.close()

    truck = Console(browser, url, capture)
    truck.sign_in(keys["cold-chain-logistics"])
    truck.form("shipping")
    truck.fill(
        units=pallet,
        location="urn:epc:id:sgln:0690321.00001.0",
        destination="urn:epc:id:sgln:0690654.00018.0",
        tempMin="3.1",
        tempMax="5.8",
    )
    heights.append(truck.record())
    truck.close()

    shop = Console(browser, url, capture)
    shop.sign_in(keys["retail-pharmacy-chain"])
    shop.form("receiving")
    shop.fill(units=pallet, location="urn:epc:id:sgln:0690654.00018.0")
    shop.record()
    shop.form("selling")
    shop.fill(
        gtin=ORANGE_BULK,
        lot=orange_lot,
        quantity="5",
        location="urn:epc:id:sgln:0690654.00018.0",
    )
    heights.append(shop.record())
    shop.close()

    assert heights == sorted(heights) and len(set(heights)) == 5  # the five steps
    assert all(coop.txs + lab.txs + packer.txs + truck.txs + shop.txs)
    data = http.get(f"{url}/01/{ORANGE_BULK}/10/{orange_lot}", params={"format": "json"}).json()
    steps = [step["bizStep"] for step in data["journey"]["steps"]]
    shown = iter(steps)
    wanted = ["commissioning", "inspecting", "packing", "shipping", "retail_selling"]
    assert all(step in shown for step in wanted), steps  # in this order
    page = http.get(f"{url}/01/{ORANGE_BULK}/10/{orange_lot}", headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text[:500]
    text = page.text
    for word in ("Gannan", "Product Quality Testing", "Chlorpyrifos"):
        assert word in text, word


def test_the_notoginseng_transformation_and_the_mask_batch_with_codes(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    url, keys, http = consortium["url"], consortium["keys"], consortium["net"].http
    growers = Console(browser, url, capture, lang="zh")
    growers.sign_in(keys["wenshan-growers"], "zh")
    for plot, lot, kilos in (("A12", "WS26-A12", "800"), ("B04", "WS26-B04", "700")):
        growers.form("harvest")
        growers.fill(gtin=ROOT, lot=lot, weight=kilos, plot=plot, variety="三七")
        growers.record()
    growers.close()

    plant = Console(browser, url, capture, lang="zh")
    plant.sign_in(keys["notoginseng-processor"], "zh")
    plant.form("transformation")
    plant.fill(
        **{"inputs.0.gtin": ROOT, "inputs.0.lot": "WS26-A12", "inputs.0.quantity": "800"},
        **{"inputs.1.gtin": ROOT, "inputs.1.lot": "WS26-B04", "inputs.1.quantity": "700"},
        out_gtin=POWDER,
        out_lot="SQP-261205",
        outQuantity="3000",
        process="grinding",
        location="urn:epc:id:sgln:0690456.00300.0",
    )
    plant.record()
    plant.close()
    page = http.get(f"{url}/01/{POWDER}/10/SQP-261205", headers={"Accept-Language": "zh"})
    assert page.status_code == 200
    assert "文山" in page.text  # the growers' origin, through the transformation

    # The factory runs a node of its own, which it delegated its certificate to: that node
    # turns a signed request into the codes.issue transaction (the batch key is drawn there).
    own = consortium["net"].url("mask-factory-node")
    factory = Console(browser, own, capture, width=1280)
    factory.sign_in(keys["ganzhou-mask-factory"])
    factory.form("production")
    factory.fill(
        gtin=MASK, lot="MK26-1205", quantity="12", location="urn:epc:id:sgln:6907890.00001.0"
    )
    factory.record()
    factory.page.click("#tab-codes")
    factory.fill(gtin=MASK, lot="MK26-1205", count="12", nameZh="KN95 防护口罩", nameEn="KN95 mask")
    factory.page.click("#issue")
    factory.page.wait_for_selector("#labels-pdf", timeout=60_000)
    with factory.page.expect_download() as download:
        factory.page.click("#labels-pdf")
    pdf = Path(download.value.path()).read_bytes()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "console-labels.pdf").write_bytes(pdf)
    factory.page.screenshot(path=str(ARTIFACTS / "console-codes-en-1280.png"), full_page=True)
    batch = factory.page.get_attribute("#committed", "data-tx")
    me = Identity.from_consortium(consortium["net"].dir / "consortium", "ganzhou-mask-factory")
    with ParkTraceClient(own, identity=me) as client:
        listed = client.signed("GET", f"/v1/codes/batches/{batch}/codes").json()["codes"]
    assert len(listed) == 12
    check_label_sheet(pdf, listed, consortium["root"])
    # A shopper scans the first mask twice; the consumer page shows the batch's journey.
    path = "/" + listed[0]["uri"].split("/", 3)[3]
    for _ in range(2):
        shown = http.get(f"{own}{path}", headers={"User-Agent": PHONE_USER_AGENT})
        assert shown.status_code == 200 and "MK26-1205" in shown.text
    factory.page.click("#tab-lots")
    factory.page.wait_for_selector(".batch .scans", timeout=15_000)
    assert factory.page.get_attribute(".batch .scans", "data-scans") == "2"
    factory.page.screenshot(path=str(ARTIFACTS / "console-lots-codes-en-1280.png"), full_page=True)
    factory.close()


MM = 25.4 / 72


def check_label_sheet(pdf: bytes, codes: list[dict[str, Any]], work: Path) -> None:
    """Every code on the sheet decodes after rendering (pdftoppm, zxing-cpp); every printed
    word lies inside its label and off every code (pdftotext's word boxes against the
    boxes the sheet generator placed the codes in); each label carries the full serial,
    the Chinese name, the lot, the dates and 扫码验真."""
    path = work / "labels.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(path), str(work / "sheet")], check=True)
    found = set()
    for png in sorted(work.glob("sheet*.png")):
        found |= {b.text for b in zxingcpp.read_barcodes(Image.open(png))}
    assert found == {c["uri"] for c in codes}
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    words = [
        (float(a) * MM, float(b) * MM, float(c) * MM, float(d) * MM, text)
        for a, b, c, d, text in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<',
            xhtml,
        )
    ]
    layout = LabelLayout()
    slots = range(len(codes))
    cells = [layout.cell(i) for i in slots]
    qrs = [layout.code(i) for i in slots]
    labelled = [w for w in words if w[1] >= layout.top - 0.01]
    assert labelled
    for x0, y0, x1, y1, text in labelled:
        inside = [c for c in cells if c.x <= x0 and x1 <= c.right and c.y <= y0 and y1 <= c.bottom]
        assert inside, f"{text!r} at ({x0:.1f}, {y0:.1f})–({x1:.1f}, {y1:.1f}) is clipped"
        for q in qrs:
            apart = x1 <= q.x or q.right <= x0 or y1 <= q.y or q.bottom <= y0
            assert apart, f"{text!r} overlaps the code at ({q.x:.1f}, {q.y:.1f})"
    text = " ".join(w[4] for w in labelled)
    for code in codes:
        assert code["serial"] in text  # in full, never cut
    assert text.count("扫码验真") == len(codes)
    assert text.count("MK26-1205") == len(codes)
    assert "防护口罩" in text and "生产日期" in text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_screenshots_and_a_refusal_beside_its_field(
    consortium: dict[str, Any], browser: Any, capture: Capture, lang: str
) -> None:
    """Sign-in, the harvest form with a refusal of the park's rules shown beside the
    weight, and My lots, at phone and desktop width."""
    for width in (390, 1280):
        coop = Console(browser, consortium["url"], capture, width=width, lang=lang)
        coop.page.goto(f"{consortium['url']}/console/?lang={lang}")
        coop.page.screenshot(path=str(ARTIFACTS / f"console-signin-{lang}-{width}.png"))
        coop.sign_in(consortium["keys"]["gannan-orchard-coop"], lang)
        coop.form("harvest")
        coop.fill(gtin=ORANGE_BULK, lot=f"GN26-{lang}-{width}", weight="990000", plot="P07")
        coop.page.click("#record")
        coop.page.wait_for_selector(
            "#event-form .error:not(:empty), #committed", state="attached", timeout=30_000
        )
        refusal = coop.page.locator('[data-field="weight"] .error')
        assert refusal.inner_text().strip(), coop.page.inner_text("#event-form")
        coop.page.screenshot(
            path=str(ARTIFACTS / f"console-refusal-{lang}-{width}.png"), full_page=True
        )
        coop.fill(weight="900")
        assert coop.record() > 0
        coop.page.click("#tab-lots")
        coop.page.wait_for_selector(".lot .state", timeout=15_000)
        coop.page.screenshot(
            path=str(ARTIFACTS / f"console-lots-{lang}-{width}.png"), full_page=True
        )
        coop.close()


def sheet(rows: list[dict[str, str]]) -> str:
    columns = ["type", "eventTime", "action", "bizStep", "disposition", "readPoint"]
    columns += ["bizLocation", "quantityList"]
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def production_row(i: int, **changes: str) -> dict[str, str]:
    factory = "urn:epc:id:sgln:6907890.00001.0"
    row = {
        "type": "ObjectEvent",
        "eventTime": f"2026-12-01T{8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d}+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": factory,
        "bizLocation": factory,
        "quantityList": f"https://id.gs1.org/01/{MASK}/10/MKB-{i:05d};100",
    }
    return {**row, **changes}


def upload(console: Console, path: Path) -> None:
    page = console.page
    page.click("#tab-bulk")
    page.set_input_files("#bulk-file", str(path))
    page.click("#bulk-start")
    page.wait_for_selector("#bulk-done", timeout=120_000)


def test_a_bulk_sheet_of_1500_rows_commits_with_a_progress_bar(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    path = consortium["root"] / "masks-1500.csv"
    path.write_text(sheet([production_row(i) for i in range(1500)]), encoding="utf-8")
    factory = Console(browser, consortium["url"], capture, width=1280)
    factory.sign_in(consortium["keys"]["ganzhou-mask-factory"])
    factory.page.click("#tab-bulk")
    factory.page.set_input_files("#bulk-file", str(path))
    factory.page.click("#bulk-start")
    bar = factory.page.locator("#bulk-progress")
    bar.wait_for(state="visible", timeout=60_000)
    factory.page.wait_for_selector("#bulk-done", timeout=120_000)
    done = factory.page.locator("#bulk-done")
    assert done.get_attribute("data-committed") == "1500"
    assert done.get_attribute("data-refused") == "0"
    assert bar.evaluate("b => b.value === b.max && b.max > 0")
    # How long the page took from the click to the last commit (a figure, not a test).
    figure = {"rows": 1500, "ms": int(done.get_attribute("data-ms"))}
    (ARTIFACTS / "console-bulk.json").write_text(json.dumps(figure) + "\n", encoding="utf-8")
    factory.page.screenshot(path=str(ARTIFACTS / "console-bulk-en-1280.png"), full_page=True)
    factory.close()


def test_a_sheet_with_bad_rows_shows_each_refusal_by_row_and_field(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    rows = [
        production_row(5000),
        production_row(5001, bizStep="harvesting_by_hand"),
        production_row(5002, eventTime="yesterday"),
        production_row(5003, quantityList=f"https://id.gs1.org/01/{MASK}/10/MKB-X;many"),
        production_row(5004, quantityList="https://id.gs1.org/01/06907890000343/10/MKB-Y;5"),
        production_row(5005),
    ]
    path = consortium["root"] / "masks-bad.csv"
    path.write_text(sheet(rows), encoding="utf-8")
    factory = Console(browser, consortium["url"], capture, lang="zh")
    factory.sign_in(consortium["keys"]["ganzhou-mask-factory"], "zh")
    upload(factory, path)
    done = factory.page.locator("#bulk-done")
    assert done.get_attribute("data-committed") == "2"
    assert done.get_attribute("data-refused") == "4"
    table = factory.page.locator("#bulk-table .refused-row")
    found = {
        int(r.get_attribute("data-line")): r.locator("td").all_inner_texts() for r in table.all()
    }
    assert sorted(found) == [3, 4, 5, 6]  # CSV lines (the header is line 1)
    assert found[3][1] == "bizStep"
    assert "eventTime" in found[4][1]
    assert "quantity" in found[5][1] + found[5][2]
    assert "check digit" in found[6][2]
    assert all(cells[2].strip() for cells in found.values())
    factory.page.screenshot(
        path=str(ARTIFACTS / "console-bulk-refusals-zh-390.png"), full_page=True
    )
    factory.close()


def test_an_event_signed_offline_is_queued_and_sent_later_with_its_time(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    url, http = consortium["url"], consortium["net"].http
    coop = Console(browser, url, capture, lang="zh")
    coop.sign_in(consortium["keys"]["gannan-orchard-coop"], "zh")
    coop.form("harvest")
    lot = "GN26-OFFLINE-1"
    coop.fill(gtin=ORANGE_BULK, lot=lot, weight="300", plot="P07", time="2026-12-01T09:15")
    coop.context.set_offline(True)
    coop.page.click("#record")
    coop.page.wait_for_selector("#queued", timeout=15_000)
    assert "条待发送" in coop.page.inner_text("#net")
    coop.page.click("#tab-queue")
    coop.page.wait_for_selector(".queued-item")
    queued = coop.page.get_attribute(".queued-item", "data-event-time")
    assert queued == "2026-12-01T09:15:00+08:00"
    assert lot in coop.page.inner_text("#queue")
    coop.page.screenshot(path=str(ARTIFACTS / "console-queue-zh-390.png"), full_page=True)
    coop.context.set_offline(False)  # the browser's `online` event sends the queue
    coop.page.wait_for_selector("#queue-empty", timeout=40_000)
    page = http.get(f"{url}/01/{ORANGE_BULK}/10/{lot}", params={"format": "json"})
    assert "2026-12-01T09:15:00+08:00" in page.text or "2026-12-01" in page.text
    coop.close()


def test_my_lots_show_state_blocks_and_an_evidence_bundle_that_verifies_offline(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    from ledger.genesis import Genesis
    from traceability.receipts import verify_receipt

    lot = "GN26-LOTS-1"
    coop = Console(browser, consortium["url"], capture, width=1280)
    coop.sign_in(consortium["keys"]["gannan-orchard-coop"])
    coop.form("harvest")
    coop.fill(gtin=ORANGE_BULK, lot=lot, weight="250", plot="P07")
    height = coop.record()
    coop.page.click("#tab-lots")
    coop.page.wait_for_selector(".lot .state")
    text = coop.page.inner_text("#lots")
    assert "recorded" in text and f"block #{height}" in text and "receipt" in text
    with coop.page.expect_download() as download:
        coop.page.click(".lot button")
    bundle = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    coop.close()
    genesis = Genesis.load(consortium["net"].dir / "consortium" / "genesis.json")
    assert bundle["genesis_hash"] == genesis.hash and bundle["events"]
    for item in bundle["events"]:
        check = verify_receipt(item["receipt"], genesis)
        assert check is not None
        assert item["height"] == height


def test_a_plot_is_registered_with_the_park_committees_approval(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    """The producer makes the request, the committee signs its approval in its own
    console, the producer submits both: the plot is then offered by the harvest form."""
    net = consortium["net"]
    committee_key = key_file(net, "park-committee", consortium["root"])
    coop = Console(browser, consortium["url"], capture)
    coop.sign_in(consortium["keys"]["gannan-orchard-coop"])
    coop.form("plot")
    coop.fill(
        plotId="P21",
        gln="0690123001215",
        areaHa="2.5",
        yieldKg="3000",
        lon="115.48",
        lat="24.90",
    )
    coop.page.click("#make-request")
    request = coop.page.input_value("#f-request")
    assert '"type":"plot.register"' in request, coop.errors

    committee = Console(browser, consortium["url"], capture)
    committee.sign_in(committee_key)
    committee.form("approve")
    committee.fill(request=request)
    committee.page.click("#record")
    committee.page.wait_for_selector("#approval")
    approval = committee.page.input_value("#approval")
    committee.close()

    coop.fill(approvals=approval)
    assert coop.record() > 0
    coop.form("harvest")
    plots = coop.page.locator('[name="plot"] option').all_inner_texts()
    assert any(p.startswith("P21") for p in plots), plots
    coop.close()


def test_no_request_the_browser_made_carries_the_key(
    consortium: dict[str, Any], browser: Any, capture: Capture
) -> None:
    """Last in the module, so that it judges the requests of every journey above too."""
    coop = Console(browser, consortium["url"], capture)
    coop.sign_in(consortium["keys"]["gannan-orchard-coop"])
    coop.form("harvest")
    coop.fill(gtin=ORANGE_BULK, lot="GN26-KEY-1", weight="100", plot="P07")
    coop.record()
    stored = (
        "() => new Promise(r => { const o = indexedDB.open('parktrace-console');"
        " o.onsuccess = () => { const q = o.result.transaction('keys')"
        ".objectStore('keys').count(); q.onsuccess = () => r(q.result); }; })"
    )
    assert coop.page.evaluate(stored) == 1
    extractable = (
        "() => window.ptKeys.loadKey().then(k => [k.extractable, k.type, k.algorithm.name])"
    )
    assert coop.page.evaluate(extractable) == [False, "private", "Ed25519"]
    coop.page.click("#signout")
    coop.page.wait_for_selector("#signin-button")
    assert coop.page.evaluate(stored) == 0  # signing out forgets the key
    coop.close()
    assert len(capture.requests) > 10
    net = consortium["net"]
    secrets: list[bytes] = [PASSPHRASE.encode()]
    for org in (*ORGS, "park-committee"):  # the committee signs in to approve a plot
        seed = raw_seed(net, org)
        path = consortium["root"] / f"{org}.key"  # the file the browser was given
        pem = (path if path.exists() else key_file(net, org, consortium["root"])).read_bytes()
        secrets += [
            seed,
            seed.hex().encode(),
            seed.hex().upper().encode(),
            base64.b64encode(seed),
            base64.b64encode(seed).rstrip(b"="),
            base64.urlsafe_b64encode(seed).rstrip(b"="),
            pem,
            b"".join(pem.splitlines()[1:-1]),
            *[line for line in pem.splitlines()[1:-1] if len(line) > 20],
        ]
    for url, headers, body in capture.requests:
        blob = url.encode() + repr(headers).encode() + body
        for secret in secrets:
            assert secret not in blob, f"key material in a request to {url}"
