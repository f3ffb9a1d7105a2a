"""The consumer page in a real browser: Debian's chromium, headless, driven by Playwright
through its executable path. What a shopper sees first (product, one verdict box, origin,
key steps), that it reads without JavaScript, fits 360, 390 and 1280 px in both languages
for every kind of page, and that the ledger proof verifies in the browser itself and
fails when a byte of a receipt changes. Screenshots stay in test-artifacts/."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from api.app import create_app
from api.codes.service import CodesSettings, install
from api.histories import Case, record_cases
from ledger import codec
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.devchain import DevChain
from nodes.solo import SoloNode
from traceability.codes.digital_link import DigitalLink

from .browser import ARTIFACTS, PHONE_USER_AGENT, Server, chromium_browser, needs_chromium
from .test_resolver import HOST, RESOLVER, Clock

PHONE = {"width": 390, "height": 844}
WIDTHS = (360, 390, 1280)
ZH = {"Accept-Language": "zh-CN,zh"}
EN = {"Accept-Language": "en"}
REASON = "市场抽检过滤效率低于 GB 2626-2019 要求"

pytestmark = needs_chromium


def _serve(park: Consortium, path, recall: bool) -> Iterator[tuple[str, dict[str, Case]]]:
    store = Store(f"sqlite:///{path}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    if recall:
        chain = DevChain.resume(park.genesis, park.validator_keys, store)
        mask = cases["mask"]
        payload = {
            "lot": mask.code.lot_id,
            "reason": REASON,
            "units": [c.instance_id for c in mask.codes],
        }
        chain.commit_block(
            [park.sign_tx("market-supervision-bureau", "recall", payload, chain.next_time())]
        )
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,), clock=Clock()))
    with Server(app) as server:
        yield server.url, cases
    store.close()


@pytest.fixture(scope="module")
def site(park: Consortium, tmp_path_factory) -> Iterator[tuple[str, dict[str, Case]]]:
    yield from _serve(park, tmp_path_factory.mktemp("browser") / "node.db", recall=False)


@pytest.fixture(scope="module")
def recalled_site(park: Consortium, tmp_path_factory) -> Iterator[tuple[str, dict[str, Case]]]:
    yield from _serve(park, tmp_path_factory.mktemp("recalled") / "node.db", recall=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as launched:
        yield launched


def _phone(browser: Any, javascript: bool) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=javascript,
        user_agent=PHONE_USER_AGENT,
    )
    yield context
    context.close()


@pytest.fixture(scope="module")
def phone(browser) -> Iterator[Any]:
    """A phone with JavaScript off: the page must read without it."""
    yield from _phone(browser, javascript=False)


@pytest.fixture(scope="module")
def smartphone(browser) -> Iterator[Any]:
    """A phone with JavaScript on, as most are: for the verifier and the layout checks."""
    yield from _phone(browser, javascript=True)


def url_of(base: str, code: DigitalLink, **extra: str) -> str:
    query = "&".join(q for q in (code.query(), *(f"{k}={v}" for k, v in extra.items())) if q)
    return base + code.path() + (f"?{query}" if query else "")


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


# -- what a shopper sees first -----------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_summary_first_and_the_journey_folded_below(site, phone, lang: str) -> None:
    url, cases = site
    case = cases["mask"]
    page = phone.new_page()
    page.set_extra_http_headers(ZH if lang == "zh" else EN)
    answer = page.goto(url_of(url, case.code))
    assert answer is not None and answer.status == 200
    summary = page.locator("#summary")
    assert ("KN95 防护口罩" if lang == "zh" else "KN95 protective mask") in summary.inner_text()
    owner = "赣州防护口罩厂" if lang == "zh" else "Ganzhou"
    assert owner in page.locator("#owner").inner_text()
    assert page.locator("#status.verdict-genuine").is_visible()
    assert ("正品码" if lang == "zh" else "Genuine code") in page.locator("#status").inner_text()
    assert ("江西" if lang == "zh" else "Jiangxi") in page.locator("#origin").inner_text()
    key = page.locator("#key-steps li")
    assert 3 <= key.count() <= 5
    dates = [re.match(r"\d{4}-\d\d-\d\d", key.nth(i).inner_text()) for i in range(key.count())]
    assert all(dates) and [d[0] for d in dates] == sorted(d[0] for d in dates)  # type: ignore[index]
    assert page.locator("#report").get_attribute("href") == "https://www.12315.cn/"
    # The full journey is folded; it opens without JavaScript, in the order things happened.
    steps = page.locator("#journey .step")
    assert steps.count() == 7 and not steps.first.is_visible()
    page.locator("#journey > summary").click()
    assert all(steps.nth(i).is_visible() for i in range(7))
    assert "step-codes" in (steps.nth(1).get_attribute("class") or "")  # right after production
    last = steps.nth(6)
    pharmacy = "零售连锁药房" if lang == "zh" else "Retail and Pharmacy Chain"
    assert pharmacy in last.locator(".signer").inner_text()
    main = page.locator("main").inner_text()
    assert "(admin)" not in main and "UTC)" not in main
    assert not re.search(r"[0-9a-f]{12}", main)  # no transaction hashes
    assert page.locator("#journey a[href*='/receipt']").count() == 0
    # The ledger proof is folded too: block, signing organisation, a readable check.
    proof = page.locator("#ledger-proof .proof-row")
    assert proof.count() == 7 and not proof.first.is_visible()
    page.locator("#ledger-proof > summary").click()
    assert f"#{case.step('pharmacy').height}" in proof.nth(6).inner_text()
    assert pharmacy in proof.nth(6).locator(".signer").inner_text()
    if lang == "zh":
        assert "上链时间" in proof.nth(0).inner_text()
    shot(page, f"consumer-page-mask-{lang}-open")
    page.close()


def test_share_metadata_for_wechat(site, phone) -> None:
    url, cases = site
    page = phone.new_page()
    page.set_extra_http_headers(ZH)
    page.goto(url_of(url, cases["orange"].code))
    meta = {
        p: page.locator(f"meta[property='og:{p}']").get_attribute("content")
        for p in ("title", "description", "image")
    }
    assert "赣南脐橙" in (meta["title"] or "") and "正品码" in (meta["description"] or "")
    image = page.request.get(meta["image"] or "")
    assert image.ok and image.headers["content-type"] == "image/png"
    page.close()


# -- every kind of page fits every screen ---------------------------------------------------


def _open(page: Any, kind: str, lang: str, site, recalled_site) -> None:
    """Load the page a shopper sees for `kind` in `lang`."""
    url, cases = recalled_site if kind == "recalled" else site
    if kind in ("orange", "notoginseng", "mask"):
        code = cases[kind].codes[1 if lang == "zh" else 2]
        page.goto(url_of(url, code))
    elif kind == "recalled":
        page.goto(url_of(url, cases["mask"].codes[3]))
    elif kind == "copied":
        code = cases["mask"].codes[6 if lang == "zh" else 7]
        page.goto(url_of(url, code, region="CN-GD"))
        page.goto(url_of(url, code, region="CN-XJ"))
    elif kind == "not-genuine":
        mask = cases["mask"].code
        page.goto(url_of(url, DigitalLink(mask.gtin, mask.lot, "0" * 16)))
    else:  # a malformed code: a wrong check digit
        page.goto(url + "/01/06907890000347/10/KN95-261112-L3/21/" + "A" * 16)


EXPECTED = {
    "recalled": ("已召回", "RECALLED"),
    "copied": ("此码可能被复制", "may have been copied"),
    "not-genuine": ("非正品码", "Not a genuine code"),
    "malformed": ("校验位不正确", "check digit"),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    "kind", ["orange", "notoginseng", "mask", "recalled", "copied", "not-genuine", "malformed"]
)
def test_no_horizontal_scroll_at_360_390_1280(
    site, recalled_site, smartphone, kind: str, lang: str
) -> None:
    page = smartphone.new_page()
    page.set_extra_http_headers(ZH if lang == "zh" else EN)
    _open(page, kind, lang, site, recalled_site)
    status = page.locator("#status")
    words = EXPECTED.get(kind, ("正品码", "Genuine code"))[0 if lang == "zh" else 1]
    assert words in status.inner_text()
    assert page.locator("#status").count() == 1  # one verdict box, never two
    assert "[rule" not in page.locator("body").inner_text()
    assert not re.search(r"urn:|https?://", status.inner_text())  # names, not raw identifiers
    if kind == "recalled":
        assert "KN95-261112-L3" in status.inner_text()
        assert page.locator(".verdict-genuine").count() == 0
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        shot(page, f"consumer-{kind}-{lang}-{width}")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, (kind, lang, width, page.evaluate("document.documentElement.scrollWidth"))
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
    page.close()


# -- the ledger proof, verified in the browser -----------------------------------------------


def _verify(page: Any) -> tuple[str, list[str]]:
    page.locator("#ledger-proof > summary").click()
    page.locator("#verify-button").click()
    verdict = page.locator("#verify-verdict")
    verdict.wait_for(timeout=20_000)
    rows = page.locator(".proof-row .check")
    return verdict.get_attribute("class") or "", [
        rows.nth(i).get_attribute("class") or "" for i in range(rows.count())
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_receipts_verify_in_the_browser(site, smartphone, lang: str) -> None:
    url, cases = site
    page = smartphone.new_page()
    page.set_extra_http_headers(ZH if lang == "zh" else EN)
    page.goto(url_of(url, cases["notoginseng"].code))
    verdict, rows = _verify(page)
    assert verdict == "ok" and len(rows) == 9 and all(r == "check ok" for r in rows)
    said = page.locator("#verify-result").inner_text()
    assert ("默克尔证明" if lang == "zh" else "Merkle proof") in said
    assert ("Ed25519" in said) and ("三分之二" if lang == "zh" else "two thirds") in said
    shot(page, f"consumer-verified-{lang}")
    page.close()


def _flip_base64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[10] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _next_char(text: str, at: int) -> str:
    return text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :]


TAMPER = {
    "transaction": lambda r: r["transaction"]["body"].update(
        timestamp=_next_char(r["transaction"]["body"]["timestamp"], 18)
    ),
    "header": lambda r: r["block"]["header"].update(
        time=_next_char(r["block"]["header"]["time"], 18)
    ),
    "signature": lambda r: r["commit"]["signatures"][0].update(
        signature=_flip_base64(r["commit"]["signatures"][0]["signature"])
    ),
    "proof": lambda r: r["block"].update(
        tx_proof=[_next_char(r["block"]["tx_proof"][0], 0), *r["block"]["tx_proof"][1:]]
    ),
}


@pytest.mark.parametrize("part", sorted(TAMPER))
def test_a_changed_byte_fails_in_the_browser(site, smartphone, part: str) -> None:
    url, cases = site
    case = cases["orange"]
    target = case.step("inspection")  # a block with more than one transaction is not needed
    page = smartphone.new_page()
    page.set_extra_http_headers(ZH)

    def tampered(route: Any) -> None:
        receipt = json.loads(route.fetch().body())
        if part == "proof" and not receipt["block"]["tx_proof"]:
            receipt["log"]["proof"][0] = _next_char(receipt["log"]["proof"][0], 0)
        else:
            TAMPER[part](receipt)
        route.fulfill(body=codec.canonical(receipt), content_type="application/json")

    page.route(f"**/v1/transactions/{target.tx.id}/receipt", tampered)
    page.goto(url_of(url, case.codes[5]))
    verdict, rows = _verify(page)
    assert verdict == "bad"
    heights = [
        int(page.locator(".proof-row").nth(i).get_attribute("data-height") or 0)
        for i in range(len(rows))
    ]
    failed = [h for h, r in zip(heights, rows, strict=True) if r == "check bad"]
    assert failed == [target.height]
    assert "验证失败" in page.locator("#verify-verdict").inner_text()
    page.close()


def test_the_verifier_canonicalises_as_the_ledger_does(site, smartphone) -> None:
    """RFC 8785 in JavaScript gives the bytes ledger/codec.py gives, on awkward values."""
    url, cases = site
    page = smartphone.new_page()
    page.goto(url_of(url, cases["mask"].codes[8]))
    value = {
        "b": [0.6, 1e21, 1.5e-7, -0.0, 100, 2**53 - 1],
        "a": {"z": '引号"与\\反斜杠\n', "é": True, "\u20ac": None, "\U0001f600": "emoji"},
        "": "",
    }
    mine = page.evaluate("v => window.ParkTraceVerify.canonical(v)", value)
    assert mine.encode() == codec.canonical(value)
    page.close()


def test_a_step_claimed_for_another_organisation_fails(site, smartphone) -> None:
    """The browser confirms who signed: a page naming another organisation for a step
    than the one whose certificate key signed its transaction does not verify."""
    url, cases = site
    case = cases["mask"]
    target = case.step("shipping")
    page = smartphone.new_page()
    page.set_extra_http_headers(EN)
    code = case.codes[9]

    def relabelled(route: Any) -> None:
        html = route.fetch().text()
        row = f'data-tx="{target.tx.id}" data-height="{target.height}" data-org="{target.org}"'
        assert row in html
        route.fulfill(
            body=html.replace(row, row.replace(target.org, "retail-pharmacy-chain")),
            content_type="text/html; charset=utf-8",
        )

    page.route(lambda u: u.startswith(url + code.path()), relabelled)
    page.goto(url_of(url, code))
    verdict, rows = _verify(page)
    assert verdict == "bad" and rows.count("check bad") == 1
    failed = page.locator(f".proof-row[data-height='{target.height}'] .check")
    assert "another transaction or signer" in failed.inner_text()
    page.close()


# -- the browser's verifier against the offline one -------------------------------------------

VERIFY_IN_PAGE = """async ([receipts, genesis]) => {
  const out = [];
  for (const r of receipts) {
    try { await window.ParkTraceVerify.verifyReceipt(JSON.parse(r), genesis); out.push(null); }
    catch (e) { out.push(String(e.message || e)); }
  }
  return out;
}"""


def _receipts_with_links(park: Consortium, tmp_path) -> tuple[dict, dict, dict]:
    """A plain receipt, one whose signer joined after genesis, one certified by a later
    validator set (built as tests/test_receipts.py builds them)."""
    from ledger.membership import SET_VALIDATORS

    from .test_receipts import (
        MSB,
        EveryKeySigns,
        event,
        fifth_validator,
        joined_later,
        receipt_of,
        stamp,
    )

    store = Store(f"sqlite:///{tmp_path / 'links.db'}")
    chain = EveryKeySigns(park.genesis, dict(park.validator_keys), store)
    plain = park.sign_tx("gannan-orchard-coop", "epcis.event", event("commissioning"), stamp(1))
    other = park.sign_tx("gannan-orchard-coop", "epcis.event", event("storing"), stamp(2))
    chain.commit_block([other, plain])
    tea = joined_later(park, chain, joined=stamp(3), recorded=stamp(4))
    change, node_key = fifth_validator(park)
    chain.commit_block([park.membership_tx(MSB, SET_VALIDATORS, change, timestamp=stamp(5))])
    chain.keys["mask-factory-node-2"] = node_key
    after = park.sign_tx("gannan-orchard-coop", "epcis.event", event("storing"), stamp(6))
    chain.commit_block([after])
    receipts = receipt_of(chain, plain), receipt_of(chain, tea), receipt_of(chain, after)
    store.close()
    return receipts


def test_the_browser_agrees_with_the_offline_verifier(
    park: Consortium, site, smartphone, tmp_path
) -> None:
    """Links (a signer who joined later, a new validator set) verify in the browser as
    offline, removing them fails both, and no single flipped byte of a receipt passes."""
    from traceability.epcis.document import parse_json
    from traceability.receipts import ReceiptError, receipt_bytes, verify_receipt

    plain, joined, new_set = _receipts_with_links(park, tmp_path)
    assert len(joined["links"]) == 1 and len(new_set["links"]) >= 1
    url, cases = site
    page = smartphone.new_page()
    page.goto(url_of(url, cases["orange"].codes[6]))
    genesis = park.genesis.to_json()
    unlinked = [{**joined, "links": []}, {**new_set, "links": []}]
    texts = [receipt_bytes(r).decode() for r in (plain, joined, new_set, *unlinked)]
    said = page.evaluate(VERIFY_IN_PAGE, [texts, genesis])
    assert said[:3] == [None, None, None]
    assert "not in genesis and no link" in said[3] and "does not link to genesis" in said[4]
    raw = receipt_bytes(plain)
    flipped = [raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :] for i in range(len(raw))]
    offline = []
    for candidate in flipped:
        try:
            verify_receipt(parse_json(candidate, unique_keys=True), park.genesis)
            offline.append(None)
        except (ReceiptError, ValueError) as exc:
            offline.append(str(exc))
    texts = [c.decode("utf-8", errors="replace") for c in flipped]
    in_browser = page.evaluate(VERIFY_IN_PAGE, [texts, genesis])
    assert None not in offline
    assert [i for i, r in enumerate(in_browser) if r is None] == []
    page.close()


def test_over_plain_http_the_page_says_to_use_https(site, smartphone) -> None:
    """WebCrypto exists only in secure contexts: on a plain-http host the button stays
    hidden and the page says why, instead of failing every receipt."""
    url, cases = site
    page = smartphone.new_page()
    page.set_extra_http_headers(ZH)
    insecure = "http://parktrace.test"
    page.route(f"{insecure}/**", lambda route: route.fulfill(
        response=route.fetch(url=route.request.url.replace(insecure, url))
    ))  # fmt: skip
    code = cases["mask"].codes[10]
    page.goto(insecure + code.path() + "?" + code.query())
    assert page.evaluate("window.isSecureContext") is False
    page.locator("#ledger-proof > summary").click()
    assert "HTTPS" in page.locator("#verify-result").inner_text()
    assert not page.locator("#verify-button").is_visible()
    page.close()
