"""The GS1-Conformant Resolver criteria (resolver standard 1.x and its conformance test
suite), one test per SHALL, against a real `parktrace serve --solo` process on a
loopback port holding the three sample cases.

HTTPS is the deployment's (a TLS proxy in front of the node) and is not tested here.
No published package carries GS1's linkset schema, so linksets are validated against
RFC 9264's JSON structure (below), and GS1's stricter rules (title and type on every
link, a default link with a title only) by the tests that state them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jsonschema_rs
import pytest

from api.histories import Case, record_cases
from devtools.cluster import free_ports
from ledger.consortium import Consortium
from ledger.store import Store
from tests.localnet import end_process
from traceability.codes.digital_link import DigitalLink
from traceability.codes.sealing import ResolverKey

RESOLVER = ResolverKey.from_seed(b"conformance tests")
GS1 = "https://gs1.org/voc/"
#: RFC 9264 section 4.2: a linkset is an array of link context objects, each an anchor
#: and arrays of target objects (an href and target attributes) by relation type.
RFC9264 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["linkset"],
    "additionalProperties": False,
    "properties": {
        "linkset": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["anchor"],
                "properties": {"anchor": {"type": "string", "format": "uri"}},
                "additionalProperties": {
                    "type": ["array", "string"],
                    "items": {
                        "type": "object",
                        "required": ["href"],
                        "properties": {
                            "href": {"type": "string", "format": "uri-reference"},
                            "title": {"type": "string"},
                            "type": {"type": "string"},
                            "hreflang": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        }
    },
}
#: IANA media types (RFC 6838 syntax of a registered type/subtype).
MEDIA_TYPE = r"^(application|text|image)/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$"


@dataclass(frozen=True)
class Resolver:
    url: str
    cases: dict[str, Case]
    http: httpx.Client

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(self.url + path, **kwargs)

    def item(self, name: str = "mask") -> DigitalLink:
        return self.cases[name].code


@pytest.fixture(scope="module")
def resolver(park: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resolver]:
    root = tmp_path_factory.mktemp("conformance")
    park.write(root / "consortium")
    port = free_ports(0)
    url = f"http://127.0.0.1:{port}"
    store = Store(f"sqlite:///{root / 'node.db'}")
    cases = record_cases(park, store, [RESOLVER.public], url)
    store.close()
    (root / "resolver.key").write_text(RESOLVER.text())
    env = {
        **os.environ,
        "PARKTRACE_RESOLVER_HOST": url,
        "PARKTRACE_RESOLVER_KEY": str(root / "resolver.key"),
    }
    command = [
        sys.executable, "-m", "cli", "serve", "--solo",
        "--consortium", str(root / "consortium"), "--db", str(root / "node.db"),
        "--port", str(port), "--block-interval", "0.2",
    ]  # fmt: skip
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    http = httpx.Client(timeout=10, follow_redirects=False)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "serve.log").read_text()
            try:
                if http.get(f"{url}/v1/chain").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (root / "serve.log").read_text()
            time.sleep(0.1)
        yield Resolver(url, cases, http)
    finally:
        http.close()
        end_process(process, 10)
        log.close()


def path_of(link: DigitalLink, *, attributes: bool = False) -> str:
    return link.path() + (f"?{link.query()}" if attributes and link.attributes else "")


def linkset_of(resolver: Resolver, path: str) -> dict:
    answer = resolver.get(path, params={"linkType": "linkset"})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- HTTP -----------------------------------------------------------------------------------


def test_shall_support_get_head_and_options(resolver: Resolver) -> None:
    path = path_of(resolver.item())
    get = resolver.get(path)
    head = resolver.http.head(resolver.url + path)
    options = resolver.http.options(resolver.url + path)
    assert get.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    compressed = resolver.http.options(resolver.url + "/ARHKVAdpQg")
    for answer in (options, compressed):
        assert answer.status_code == 204
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert allowed == {"GET", "HEAD", "OPTIONS"}


def test_shall_support_cors(resolver: Resolver) -> None:
    path = path_of(resolver.item())
    origin = {"Origin": "https://app.example"}
    preflight = resolver.http.options(
        resolver.url + path,
        headers={**origin, "Access-Control-Request-Method": "GET,HEAD,OPTIONS"},
    )
    assert preflight.headers["access-control-allow-origin"] == "*"
    methods = preflight.headers["access-control-allow-methods"]
    assert all(m in methods for m in ("GET", "HEAD", "OPTIONS"))
    for answer in (
        resolver.get(path, headers=origin),
        resolver.get(path + "/foo", headers=origin),  # errors too: a page can read why
        resolver.get("/.well-known/gs1resolver", headers=origin),
    ):
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "Link" in answer.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in resolver.get("/v1/chain").headers


# -- syntax ---------------------------------------------------------------------------------


def test_shall_report_a_syntactically_invalid_uri_with_400(resolver: Resolver) -> None:
    item = path_of(resolver.item())
    for bad in (item + "/foo", "/01/06907890000347", "/00/106141411234567890", "/414/123"):
        for accept in ("text/html", "application/json", "application/linkset+json"):
            answer = resolver.get(bad, headers={"Accept": accept})
            assert answer.status_code == 400, (bad, accept, answer.status_code)


def test_shall_not_use_200_for_an_error(resolver: Resolver) -> None:
    item = resolver.item()
    for path in (
        path_of(item) + "/foo",
        path_of(DigitalLink(item.gtin, item.lot, "0" * 16)),  # not a genuine code
        "/01/09506000134352",  # nothing recorded
        path_of(item) + "?linkType=gs1:recipeInfo",
    ):
        answer = resolver.get(path)
        assert answer.status_code >= 400, path


def test_shall_support_every_key_qualifier_of_a_primary_key(resolver: Resolver) -> None:
    """GTIN: 22, 10, 21 (an unknown lot walks up the tree); GLN: 254; SSCC: none."""
    item = resolver.item("orange")
    assert resolver.get(path_of(DigitalLink(item.gtin, item.lot))).status_code == 200
    assert resolver.get(path_of(item)).status_code == 200
    unknown_lot = resolver.get(f"/01/{item.gtin}/10/KL8G")
    assert unknown_lot.status_code == 307
    assert unknown_lot.headers["location"] == f"{resolver.url}/01/{item.gtin}"
    variant = resolver.get(f"/01/{item.gtin}/22/V1/10/{item.lot}")
    assert variant.status_code == 200
    gln = "0690456003009"  # the notoginseng processor's plant
    assert resolver.get(f"/414/{gln}").status_code == 200
    extension = resolver.get(f"/414/{gln}/254/KL8G")
    assert extension.status_code == 307 and extension.headers["location"].endswith(f"/414/{gln}")


def test_shall_tolerate_trailing_slashes(resolver: Resolver) -> None:
    path = path_of(resolver.item())
    plain, slashed = resolver.get(path), resolver.get(path + "/")
    assert plain.status_code == slashed.status_code == 200
    moved = resolver.get(f"/01/{resolver.item().gtin}/10/KL8G/")
    assert moved.status_code == 307 and moved.headers["location"].endswith(resolver.item().gtin)


# -- compression ----------------------------------------------------------------------------

#: Compressed forms written by GS1's reference toolkit (with its optimisation codes), and
#: what they stand for.
COMPRESSED = {
    "ARHKVAdpQg": "/01/09780345418913",
    "ABeRcNGJhW2Q": "/00/106141411234567897",
    "nYqNr0vFJmDOCK-3": "/414/9521321000018/254/DOCK-3",
    "GgyQvKjDtNJhW3Wuv2m6gAkaKzxNXm96OJO": (
        "/01/06907890000346/10/MK2611-03/21/0123456789ABCDEF?17=291111"
    ),
}


def test_shall_decompress_a_compressed_uri(resolver: Resolver) -> None:
    from traceability.codes.compression import decompress
    from traceability.codes.keys import uncompressed

    for segment, expected in COMPRESSED.items():
        assert uncompressed(*decompress(segment)) == expected
    # the orange's code, compressed by the reference toolkit's method: answered in place
    code = resolver.item("orange")
    answer = resolver.get(f"/{_compress(code)}", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["gs1:hasSerialNumber"] == code.serial
    assert resolver.get("/ZZZZZZZZZZZZ").status_code == 400  # not decompressible


def test_shall_expose_the_uncompressed_uri_as_owl_same_as(resolver: Resolver) -> None:
    code = resolver.item("orange")
    answer = resolver.get(f"/{_compress(code)}", headers={"Accept": "application/json"})
    same = next(p for p in answer.headers["link"].split(", ") if 'rel="owl:sameAs"' in p)
    assert same == f'<{code.uri(resolver.url, attributes=False)}>; rel="owl:sameAs"'


def _compress(link: DigitalLink) -> str:
    """A GTIN code in the binary form of GS1 Digital Link: Compression (AI 01, then 10 and
    21 as base64-encoded alphanumerics; values of this sample alphabet only)."""
    from traceability.codes.compression import SAFE64

    bits = "00000001" + format(int(link.gtin), "047b")
    for ai, value in (("10", link.lot), ("21", link.serial)):
        assert value is not None and all(c in SAFE64 for c in value)
        bits += "".join(format(int(d), "04b") for d in ai) + "011" + format(len(value), "05b")
        bits += "".join(format(SAFE64.index(c), "06b") for c in value)
    bits += "0" * (-len(bits) % 6)
    return "".join(SAFE64[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


# -- the linkset ----------------------------------------------------------------------------


def test_shall_answer_linktype_linkset_and_accept_linkset_json_with_an_rfc9264_linkset(
    resolver: Resolver,
) -> None:
    path = path_of(resolver.item(), attributes=True)
    by_type = resolver.get(path, params={"linkType": "linkset"})
    by_accept = resolver.get(path, headers={"Accept": "application/linkset+json"})
    for answer in (by_type, by_accept):
        assert answer.status_code == 200  # never a redirect
        assert answer.headers["content-type"].startswith("application/linkset+json")
        jsonschema_rs.Draft7Validator(RFC9264, validate_formats=True).validate(answer.json())
    assert by_type.json() == by_accept.json()


def test_shall_include_the_links_of_every_level_up_to_the_primary_key(resolver: Resolver) -> None:
    item = resolver.item()
    anchors = [e["anchor"] for e in linkset_of(resolver, path_of(item))["linkset"]]
    assert anchors == [
        item.uri(resolver.url, attributes=False),
        DigitalLink(item.gtin, item.lot).uri(resolver.url),
        DigitalLink(item.gtin).uri(resolver.url),
    ]
    unrecorded = resolver.get("/414/0690456003009/254/1", params={"linkType": "linkset"})
    assert unrecorded.status_code == 307  # an extension nothing was recorded at: walk up
    assert unrecorded.headers["location"].endswith("/414/0690456003009?linkType=linkset")
    gln = linkset_of(resolver, "/414/0690456003009")
    assert [e["anchor"] for e in gln["linkset"]] == [f"{resolver.url}/414/0690456003009"]


def test_shall_use_the_uncompressed_uri_as_the_subject(resolver: Resolver) -> None:
    code = resolver.item("orange")
    linkset = resolver.get(f"/{_compress(code)}", params={"linkType": "linkset"}).json()
    assert linkset["linkset"][0]["anchor"] == code.uri(resolver.url, attributes=False)


def test_shall_give_every_link_a_target_type_and_title(resolver: Resolver) -> None:
    for path in (path_of(resolver.item("orange")), "/00/206907890000000182", "/414/0690456003009"):
        for entry in linkset_of(resolver, path)["linkset"]:
            for relation, links in entry.items():
                if relation in ("anchor", "description"):
                    continue
                assert relation.startswith(GS1), relation
                for link in links:
                    assert link["href"].startswith(("http://", "https://")), link
                    assert link["title"], link
                    own_page = link["href"].startswith(resolver.url) and "type" in link
                    if own_page and link["type"] == "text/html":  # SHOULD: its languages
                        assert link["hreflang"] == ["zh", "en"], link


def test_shall_use_iana_media_types(resolver: Resolver) -> None:
    import re

    for entry in linkset_of(resolver, path_of(resolver.item("orange")))["linkset"]:
        for links in entry.values():
            if isinstance(links, list):
                for link in links:
                    if "type" in link:
                        assert re.fullmatch(MEDIA_TYPE, link["type"]), link["type"]


def test_shall_type_the_default_link_descriptively_too(resolver: Resolver) -> None:
    """One gs1:defaultLink per level, with a title and no other attribute, also listed
    under a descriptive link type."""
    for entry in linkset_of(resolver, path_of(resolver.item()))["linkset"]:
        (default,) = entry[GS1 + "defaultLink"]
        assert set(default) == {"href", "title"}
        typed = [
            r
            for r, links in entry.items()
            if r != GS1 + "defaultLink" and isinstance(links, list)
            if any(link["href"] == default["href"] for link in links)
        ]
        assert typed == [GS1 + "pip"]


def test_should_link_the_linkset_to_its_json_ld_context(resolver: Resolver) -> None:
    answer = resolver.get(path_of(resolver.item()), params={"linkType": "linkset"})
    assert (
        "<https://ref.gs1.org/standards/resolver/1.2.0/linkset-context>; "
        'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    ) in answer.headers["link"]


# -- redirection ----------------------------------------------------------------------------


def test_shall_recognise_one_default_link_and_answer_it(resolver: Resolver) -> None:
    """The default link of a code is this node's own page at the code's URI: a plain
    request is answered with it in place (redirecting to itself would loop)."""
    item = resolver.item()
    (default,) = linkset_of(resolver, path_of(item))["linkset"][0][GS1 + "defaultLink"]
    assert default["href"] == resolver.url + item.path()
    page = resolver.get(path_of(item, attributes=True))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    asked = resolver.get(path_of(item), params={"linkType": "gs1:defaultLink"})
    assert asked.status_code == 307 and asked.headers["location"] == default["href"]


def test_shall_redirect_to_the_requested_link_type(resolver: Resolver) -> None:
    item = resolver.item("orange")
    for entry in linkset_of(resolver, path_of(item))["linkset"][:1]:
        for relation, links in entry.items():
            if not isinstance(links, list):
                continue
            kind = "gs1:" + relation.removeprefix(GS1)
            answer = resolver.get(path_of(item), params={"linkType": kind})
            assert answer.status_code == 307, kind
            assert answer.headers["location"] == links[0]["href"], kind
            assert 'rel="linkset"' in answer.headers["link"]  # even when redirecting
    lot_only = resolver.get(path_of(item), params={"linkType": "gs1:certificationInfo"})
    assert lot_only.status_code == 307  # found one level up


def test_shall_answer_404_when_the_link_type_is_not_available(resolver: Resolver) -> None:
    for kind in ("gs1:nosuchlt", "gs1:recipeInfo", "https://gs1.org/voc/recipeInfo"):
        answer = resolver.get(path_of(resolver.item()), params={"linkType": kind})
        assert answer.status_code == 404, kind
        assert answer.json()["error"] == "not_found"


def test_shall_pass_the_query_string_on_when_redirecting(resolver: Resolver) -> None:
    item = resolver.item()
    answer = resolver.get(path_of(item) + "?foo=bar&17=291111&linkType=gs1:traceability&lang=en")
    assert answer.status_code == 307
    assert answer.headers["location"].endswith("/history?foo=bar&17=291111&lang=en")


def test_shall_recognise_the_gs1_web_vocabulary(resolver: Resolver) -> None:
    path = path_of(resolver.item())
    for spelling in ("gs1:traceability", "https://gs1.org/voc/traceability",
                     "https://ref.gs1.org/voc/traceability"):  # fmt: skip
        assert resolver.get(path, params={"linkType": spelling}).status_code == 307


# -- description file, keys, short names ----------------------------------------------------


def test_shall_provide_the_resolver_description_file(resolver: Resolver) -> None:
    for method in ("GET", "HEAD"):
        assert resolver.http.request(method, resolver.url + "/.well-known/gs1resolver").is_success
    doc = resolver.get("/.well-known/gs1resolver").json()
    assert doc["resolverRoot"] == resolver.url
    assert {"namespace": GS1, "prefix": "gs1:"} in doc["supportedLinkType"]
    assert "gs1:pip" in doc["linkTypes"] and "gs1:defaultLink" in doc["linkTypes"]
    assert doc["jsonLdContextLocation"].startswith("https://ref.gs1.org/")


def test_shall_list_the_supported_primary_keys(resolver: Resolver) -> None:
    keys = resolver.get("/.well-known/gs1resolver").json()["supportedPrimaryKeys"]
    assert keys == ["01", "00", "414"]
    assert resolver.get("/8004/0690123ABC").status_code == 404  # not a key served here


def test_an_sscc_resolves_to_the_page_of_its_contents(resolver: Resolver) -> None:
    mask = resolver.cases["mask"]
    carton = resolver.get("/00/206907890000000182", headers={"Accept-Language": "zh"})
    assert carton.status_code == 200, carton.text
    assert "物流单元 SSCC 206907890000000182" in carton.text
    assert "箱内物品（2 件）" in carton.text  # the two boxes packed into it
    box = resolver.get("/00/106907890000000116", headers={"Accept-Language": "en"})
    assert "Contents (6)" in box.text
    assert all(code.serial in box.text for code in mask.codes[:6])
    first = mask.codes[0]
    assert f'href="/01/{first.gtin}/21/{first.serial}"' in box.text  # its page


def test_a_gln_resolves_to_the_page_of_its_place(resolver: Resolver) -> None:
    place = resolver.get("/414/0690456003009", headers={"Accept-Language": "en"})
    assert place.status_code == 200, place.text
    assert "Place GLN 0690456003009" in place.text
    assert "Member: " in place.text and "signer" in place.text
    doc = resolver.get("/414/0690456003009", headers={"Accept": "application/json"}).json()
    assert doc["holders"] and doc["events"]
    assert {e["recordedBy"]["organization"] for e in doc["events"]} == {
        h["organization"] for h in doc["holders"]
    }


def test_short_names_redirect_to_the_canonical_uri(resolver: Resolver) -> None:
    item = resolver.item()
    short = f"/gtin/{item.gtin}/lot/{item.lot}/ser/{item.serial}?17=291111"
    answer = resolver.get(short)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"{resolver.url}{item.path()}?17=291111"
    assert (
        resolver.get("/sscc/206907890000000182")
        .headers["location"]
        .endswith("/00/206907890000000182")
    )
    assert resolver.get("/gtin/123").status_code == 400
