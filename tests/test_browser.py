"""The consumer page in a real browser: Debian's chromium, headless, at phone width, with
JavaScript switched off, driven by Playwright through its executable path. The journey
must be on the page and fit the screen; the screenshots stay in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.app import create_app
from api.codes.service import CodesSettings, install
from api.histories import Case, record_cases
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode

from .browser import ARTIFACTS, Server, chromium, needs_chromium
from .test_resolver import HOST, RESOLVER, Clock

PHONE = {"width": 390, "height": 844}

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(park: Consortium, tmp_path_factory) -> Iterator[tuple[str, dict[str, Case]]]:
    path = tmp_path_factory.mktemp("browser") / "node.db"
    store = Store(f"sqlite:///{path}")
    cases = record_cases(park, store, [RESOLVER.public], HOST)
    node = SoloNode(park.genesis, park.validator_keys, store)
    app = create_app(node)
    install(app, CodesSettings(resolver_host=HOST, resolver_keys=(RESOLVER,), clock=Clock()))
    with Server(app) as server:
        yield server.url, cases
    store.close()


@pytest.fixture(scope="module")
def phone(tmp_path_factory) -> Iterator[object]:
    with chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
    ) as context:
        yield context


def fits_the_screen(page, selector: str) -> None:
    for box in (item.bounding_box() for item in page.locator(selector).all()):
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, box


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_journey_is_visible_on_a_phone(site, phone, lang: str) -> None:
    url, cases = site
    case = cases["mask"]
    page = phone.new_page()
    page.set_extra_http_headers({"Accept-Language": "zh-CN,zh" if lang == "zh" else "en"})
    answer = page.goto(url + case.code.path() + "?" + case.code.query())
    assert answer is not None and answer.status == 200
    status = page.locator("#status")
    assert status.is_visible()
    assert ("正品码" if lang == "zh" else "Genuine code") in status.inner_text()
    journey = page.locator("#journey")
    assert journey.is_visible()
    steps = page.locator("#journey .step")
    assert steps.count() == 7
    for i in range(steps.count()):
        assert steps.nth(i).is_visible()
    last = steps.nth(steps.count() - 1)
    assert f"#{case.step('pharmacy').height}" in last.inner_text()
    pharmacy = "零售连锁药房" if lang == "zh" else "Retail and Pharmacy Chain"
    assert pharmacy in last.locator(".signer").inner_text()
    if lang == "zh":  # the first of the two scans
        assert "首次扫码" in page.locator("#first-scan").inner_text()
    else:
        assert "Scanned 2 times" in page.locator("#scan-count").inner_text()
    fits_the_screen(page, "main > section")
    fits_the_screen(page, "#journey .step")
    assert page.locator("link[rel=stylesheet]").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"consumer-page-mask-{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_copied_code_warning_on_a_phone(site, phone) -> None:
    url, cases = site
    code = cases["mask"].codes[4]
    page = phone.new_page()
    page.set_extra_http_headers({"Accept-Language": "zh-CN"})
    target = url + code.path() + "?" + code.query()
    page.goto(target + "&region=CN-GD")
    first = page.locator("#first-scan")
    assert first.is_visible() and "首次扫码" in first.inner_text()
    page.goto(target + "&region=CN-XJ")
    warning = page.locator("#copy-warning")
    assert warning.is_visible()
    assert "此码可能被复制" in warning.inner_text()
    assert "新疆" in warning.inner_text()
    fits_the_screen(page, "main > section")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "consumer-page-copied-code-zh.png"), full_page=True)
    page.close()
