"""GS1 Digital Link and GTIN rules: check digits, padding, the order of key qualifiers,
character set 82 and percent-encoding, data attributes; every refusal names the segment
and the rule."""

from __future__ import annotations

import random

import pytest

from traceability.codes import CodeError
from traceability.codes.attributes import CSET82, check_attribute, parse_query
from traceability.codes.digital_link import build, encode_value, parse_path, parse_uri
from traceability.codes.gtin import check_digit, normalize_gtin, park_gtin

# Published GTINs with valid check digits (GS1 examples).
VALID = {
    "96385074": "00000096385074",  # GTIN-8
    "614141000036": "00614141000036",  # GTIN-12 (UPC-A)
    "9521234543213": "09521234543213",  # GTIN-13
    "09506000134352": "09506000134352",  # GTIN-14
}


@pytest.mark.parametrize(("given", "gtin14"), VALID.items())
def test_gtins_are_padded_to_14_digits(given: str, gtin14: str) -> None:
    assert normalize_gtin(given) == gtin14
    assert parse_uri(f"https://id.gs1.org/01/{given}").gtin == gtin14


def test_check_digit() -> None:
    assert check_digit("950600013435") == 2
    assert check_digit("629104150021") == 3
    assert check_digit("9638507") == 4
    assert check_digit("61414100003") == 6


@pytest.mark.parametrize(
    ("value", "rule", "words"),
    [
        ("9521234543214", "gtin-check-digit", "should be 3, not 4"),
        ("952123454321", "gtin-check-digit", "should be"),
        ("95212345432", "gtin-length", "has 11"),
        ("952123454321X", "gtin-format", "'X'"),
        ("", "gtin-format", "8, 12, 13 or 14"),
    ],
)
def test_bad_gtins(value: str, rule: str, words: str) -> None:
    with pytest.raises(CodeError) as caught:
        normalize_gtin(value)
    assert caught.value.rule == rule and words in caught.value.message


def test_park_issued_gtins() -> None:
    gtin = park_gtin("6975123", "42")
    assert gtin == normalize_gtin(gtin) and gtin.startswith("069751230004")
    with pytest.raises(CodeError, match="leaves 5 digits"):
        park_gtin("6975123", "123456")


def test_format_is_canonical_and_round_trips() -> None:
    link = build("9521234543213", "AB/12+x", "S%1", attributes={"7007": "261103", "422": "156"})
    uri = link.uri("id.parktrace.example")
    assert uri == (
        "https://id.parktrace.example/01/09521234543213/10/AB%2F12%2Bx/21/S%251?422=156&7007=261103"
    )
    again = parse_uri(uri)
    assert (again.gtin, again.lot, again.serial) == ("09521234543213", "AB/12+x", "S%1")
    assert again.attributes == {"422": "156", "7007": "261103"}
    assert link.lot_id == "https://id.gs1.org/01/09521234543213/10/AB%2F12%2Bx"
    assert link.instance_id == "https://id.gs1.org/01/09521234543213/21/S%251"


def test_every_cset82_character_round_trips() -> None:
    rng = random.Random(7)
    alphabet = sorted(CSET82)
    for _ in range(300):
        lot = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        serial = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        link = build("09506000134352", lot, serial)
        uri = link.uri("x.example")
        path = uri.split("x.example", 1)[1]
        assert all(c.isalnum() or c in "-._/%" for c in path), path
        assert parse_uri(uri) == link


def test_only_unreserved_characters_stay_unencoded() -> None:
    assert encode_value("AZaz09-._") == "AZaz09-._"
    assert encode_value("!\"%&'()*+,/:;<=>?") == (
        "%21%22%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3C%3D%3E%3F"
    )


def test_short_names_and_a_path_prefix_are_accepted() -> None:
    link = parse_path("/products/gtin/09506000134352/lot/L1/ser/S1")
    assert (link.gtin, link.lot, link.serial) == ("09506000134352", "L1", "S1")
    assert link.path() == "/01/09506000134352/10/L1/21/S1"


@pytest.mark.parametrize(
    ("path", "field", "rule"),
    [
        ("/01/09506000134352/21/S/10/L", "/10", "qualifier-order"),
        ("/01/09506000134352/21/S/22/V", "/22", "qualifier-order"),
        ("/01/09506000134352/10/L/22/V", "/22", "qualifier-order"),
        ("/01/09506000134352/10/A/10/B", "/10", "ai-repeated"),
        ("/01/09506000134352/15/261231", "/15", "ai-not-qualifier"),
        ("/01/09506000134352/xx/1", "/xx", "ai-unknown"),
        ("/01/09506000134352/10/%E2%82%AC", "/10", "ai-charset"),
        ("/01/09506000134352/10/a~b", "/10", "ai-charset"),
        ("/01/09506000134352/10/a%2", "/10", "percent-encoding"),
        ("/01/09506000134352/10/%FF", "/10", "percent-encoding"),
        ("/01/09506000134352/10/a b", "path", "uri-character"),
        ("/00/106141411234567897", "path", "unsupported-key"),
        ("/ABCDEF123", "path", "no-primary-key"),
    ],
)
def test_bad_paths_name_the_problem(path: str, field: str, rule: str) -> None:
    with pytest.raises(CodeError) as caught:
        parse_path(path)
    assert (caught.value.field, caught.value.rule) == (field, rule), caught.value.message


def test_out_of_order_message_says_the_order() -> None:
    with pytest.raises(CodeError) as caught:
        parse_path("/01/09506000134352/21/S1/10/L1")
    assert caught.value.message == (
        "/10: key qualifiers out of order: AI 10 (lot) must come before AI 21 (serial); "
        "the order is /22/…/10/…/21/… [rule qualifier-order]"
    )


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("7007=261332", "ai-date"),
        ("7007=2611", "ai-format"),
        ("7007=261103261101", "ai-date"),  # a range that ends before it starts
        ("17=260230", "ai-date"),
        ("422=CN", "ai-format"),
        ("7003=2612312460", "ai-date"),
        ("21=S", "ai-in-query"),
        ("01=09506000134352", "ai-in-query"),
        ("7007=261103&7007=261104", "ai-repeated"),
        ("99=%7E", "ai-charset"),
    ],
)
def test_bad_data_attributes(query: str, rule: str) -> None:
    with pytest.raises(CodeError) as caught:
        parse_query(query)
    assert caught.value.rule == rule


def test_data_attributes_and_other_parameters() -> None:
    attributes, others = parse_query(
        "422=156&linkType=gs1%3Apip&7007=261103261110&17=281100&lang=zh"
    )
    assert attributes == {"17": "281100", "422": "156", "7007": "261103261110"}
    assert others == {"linkType": "gs1:pip", "lang": "zh"}
    assert check_attribute("3103", "005000") == "005000"  # net weight, 3 decimals
    assert check_attribute("8200", "https://example.com") == "https://example.com"  # unknown AI
