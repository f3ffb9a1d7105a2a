"""`/docs` (Swagger UI) and `/redoc` in Debian's chromium with every non-local request
refused: a node in a park's closed network must still show its API documentation, so the
pages' scripts, stylesheet and icon have to come from the node itself. Screenshots stay in
test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import DOCS_ASSETS, create_app
from api.docs_pages import DOCS_POLICY
from ledger.consortium import Consortium
from ledger.store import Store
from nodes.solo import SoloNode

from .browser import ARTIFACTS, Server, chromium, needs_chromium

pytestmark = needs_chromium
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def node_url(park: Consortium, tmp_path_factory) -> Iterator[str]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('docs') / 'node.db'}")
    app = create_app(SoloNode(park.genesis, park.validator_keys, store))
    with Server(app) as server:
        yield server.url
    store.close()


class OfflineBrowser:
    """A chromium context whose every request to a host other than 127.0.0.1 is aborted
    and remembered, so a test can insist the page never tried to leave the machine."""

    def __init__(self, context) -> None:
        self.context = context
        self.refused: list[str] = []
        context.route("**/*", self._only_loopback)

    def _only_loopback(self, route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("internetdisconnected")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[OfflineBrowser]:
    with chromium(tmp_path_factory.mktemp("chromium-docs-profile"), viewport=DESKTOP) as context:
        yield OfflineBrowser(context)


def open_offline(browser: OfflineBrowser, url: str):
    """A new page at `url`, with its console errors and failed requests collected."""
    browser.refused.clear()
    page = browser.context.new_page()
    failed: list[tuple[str, str, str]] = []
    page.on(
        "requestfailed",
        lambda request: failed.append((request.url, request.resource_type, request.failure or "")),
    )
    answer = page.goto(url, wait_until="networkidle")
    assert answer is not None and answer.status == 200
    return page, failed


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 20_000  # a blank page is a few kilobytes


def test_swagger_ui_renders_offline(node_url: str, browser: OfflineBrowser) -> None:
    page, failed = open_offline(browser, node_url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.title() == "ParkTrace API - Swagger UI"
    assert "ParkTrace API" in page.locator(".swagger-ui .info .title").inner_text()
    # The operations of the spec are drawn, e.g. submitting a transaction.
    assert page.locator(".opblock").count() >= 10
    assert page.locator(".opblock-summary-path", has_text="/transactions").count() >= 1
    # Swagger UI's own stylesheet applied (the operation blocks are coloured by method).
    colour = page.locator(".opblock-get").first.evaluate("e => getComputedStyle(e).borderColor")
    assert colour not in ("", "rgb(0, 0, 0)"), colour
    shoot(page, "docs-swagger-offline.png")
    assert browser.refused == [], browser.refused
    assert failed == [], failed
    page.close()


def test_redoc_renders_offline(node_url: str, browser: OfflineBrowser) -> None:
    page, failed = open_offline(browser, node_url + "/redoc")
    page.wait_for_selector(".api-content h1", timeout=30_000)
    assert page.title() == "ParkTrace API - ReDoc"
    assert "ParkTrace API" in page.locator(".api-content h1").first.inner_text()
    # The side menu lists the operations; the first one's section is drawn.
    assert page.locator(".menu-content li").count() >= 10
    assert page.locator("[data-section-id^='operation/']").count() >= 10
    shoot(page, "docs-redoc-offline.png")
    assert browser.refused == [], browser.refused
    # ReDoc's only outside reference, its vendor's logo, is stopped by the page's own
    # Content-Security-Policy before any request is made, and ReDoc then drops the image.
    assert all(kind == "image" and why == "csp" for _, kind, why in failed), failed
    assert page.locator("img[alt='redocly logo']").count() == 0
    page.close()


def test_docs_pages_name_only_local_assets(node_url: str) -> None:
    """The HTML itself points at the node's own files, each of which is served."""
    with httpx.Client(base_url=node_url, timeout=10) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert "cdn." not in html and "fonts.googleapis" not in html, html
            assert DOCS_ASSETS in html
            assert client.get(page).headers["content-security-policy"] == DOCS_POLICY
        # Only the documentation pages carry it; API answers are left as they were.
        assert "content-security-policy" not in client.get("/openapi.json").headers
        for name, kind in [
            ("swagger-ui-bundle.js", "javascript"),
            ("swagger-ui.css", "text/css"),
            ("redoc.standalone.js", "javascript"),
            ("favicon.png", "image/png"),
        ]:
            answer = client.get(f"{DOCS_ASSETS}/{name}")
            assert answer.status_code == 200, name
            assert kind in answer.headers["content-type"], (name, answer.headers)
        assert client.get(f"{DOCS_ASSETS}/no-such-file.js").status_code == 404
