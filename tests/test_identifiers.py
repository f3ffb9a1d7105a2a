"""The canonical key: every spelling of one GS1 key is one key, different keys stay apart,
and odd input never breaks it (it is a ledger rule input)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from traceability.codes.attributes import CSET82
from traceability.codes.digital_link import encode_value
from traceability.codes.gtin import check_digit
from traceability.identifiers import canonical_key, key_problem

GS1 = "https://id.gs1.org"
HOSTS = ("https://id.gs1.org", "http://id.gs1.org", "https://res.ganzhou-mask.example/p")
#: Characters an EPC URN may hold unescaped in a serial, lot or extension (TDS 2.1).
URN_SAFE = frozenset("!')(*+,.:;=_-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def with_check_digit(body: str) -> str:
    return body + str(check_digit(body))


def urn_escape(value: str) -> str:
    return "".join(c if c in URN_SAFE else f"%{ord(c):02X}" for c in value)


def every_escape(value: str) -> str:
    """Percent-encode every character (lowercase hex): still the same value."""
    return "".join(f"%{ord(c):02x}" for c in value)


@dataclass(frozen=True)
class Key:
    """A GS1 key as a value: what must decide the canonical key, and nothing else."""

    kind: str  # product | lot | item | sscc | gln
    digits: str  # GTIN-14, SSCC-18 or GLN-13
    value: str | None = None  # lot, serial or GLN extension
    prefix: int = 7  # GS1 Company Prefix length, for the EPC URN spelling
    lot: str | None = None  # an item's lot, which some spellings carry

    @property
    def identity(self) -> tuple[str, str, str | None]:
        value = None if self.kind == "gln" and self.value == "0" else self.value
        return self.kind, self.digits, value

    def spellings(self) -> list[str]:
        found = [self._link(host) for host in HOSTS]
        found.append(self._link(HOSTS[2], short_names=True))
        found.append(self._link(HOSTS[0], escape=every_escape) + "?17=291231&linkType=all")
        found.append(self._urn())
        if self.kind in ("product", "lot", "item"):  # GTIN-13, -12 and -8 where they fit
            for size in (13, 12, 8):
                if self.digits[: 14 - size] == "0" * (14 - size):
                    found.append(self._link(HOSTS[1], digits=self.digits[14 - size :]))
        if self.kind == "item" and self.lot is not None:
            found.append(
                f"{HOSTS[2]}/01/{self.digits}/10/{encode_value(self.lot)}/11/261112"
                f"/21/{encode_value(self.value or '')}"
            )
        return found

    def _link(
        self, host: str, *, short_names: bool = False, escape=encode_value, digits: str = ""
    ) -> str:
        names = {"01": "gtin", "10": "lot", "21": "ser", "00": "sscc", "414": "gln"}
        ai = (lambda a: names[a]) if short_names else (lambda a: a)
        digits = digits or self.digits
        if self.kind == "sscc":
            return f"{host}/{ai('00')}/{digits}"
        if self.kind == "gln":
            ext = f"/254/{escape(self.value)}" if self.value is not None else ""
            return f"{host}/{ai('414')}/{digits}{ext}"
        out = f"{host}/{ai('01')}/{digits}"
        if self.kind == "lot":
            out += f"/{ai('10')}/{escape(self.value or '')}"
        if self.kind == "item":
            if self.lot is not None:
                out += f"/{ai('10')}/{escape(self.lot)}"
            out += f"/{ai('21')}/{escape(self.value or '')}"
        return out

    def _urn(self) -> str:
        n = self.prefix
        if self.kind == "sscc":
            company, serial = self.digits[1 : 1 + n], self.digits[0] + self.digits[1 + n : 17]
            return f"urn:epc:id:sscc:{company}.{serial}"
        if self.kind == "gln":
            ext = urn_escape(self.value) if self.value is not None else "0"
            return f"urn:epc:id:sgln:{self.digits[:n]}.{self.digits[n:12]}.{ext}"
        company, reference = self.digits[1 : 1 + n], self.digits[0] + self.digits[1 + n : 13]
        if self.kind == "product":
            return f"urn:epc:idpat:sgtin:{company}.{reference}.*"
        if self.kind == "lot":
            return f"urn:epc:class:lgtin:{company}.{reference}.{urn_escape(self.value or '')}"
        return f"urn:epc:id:sgtin:{company}.{reference}.{urn_escape(self.value or '')}"


VALUE = st.text(st.sampled_from(sorted(CSET82)), min_size=1, max_size=20)


@st.composite
def keys(draw: st.DrawFn) -> Key:
    kind = draw(st.sampled_from(["product", "lot", "item", "sscc", "gln"]))
    prefix = draw(st.integers(6, 12))
    if kind == "sscc":
        digits = with_check_digit(draw(st.from_regex(r"\A[0-9]{17}\Z")))
        return Key(kind, digits, prefix=prefix)
    if kind == "gln":
        digits = with_check_digit(draw(st.from_regex(r"\A[0-9]{12}\Z")))
        return Key(kind, digits, draw(st.none() | st.just("0") | VALUE), prefix)
    # Leading zeros often, so that GTIN-8/12/13 spellings are drawn too.
    zeros = draw(st.sampled_from([0, 1, 2, 6]))
    digits = with_check_digit("0" * zeros + draw(st.from_regex(rf"\A[0-9]{{{13 - zeros}}}\Z")))
    prefix = min(prefix, 12)
    if kind == "product":
        return Key(kind, digits, prefix=prefix)
    if kind == "lot":
        return Key(kind, digits, draw(VALUE), prefix)
    return Key(kind, digits, draw(VALUE), prefix, draw(st.none() | VALUE))


@settings(max_examples=300, deadline=None)
@given(keys())
@example(Key("item", "06907890000346", "7GDYEY1GW29XR9EG", 7, "KN95-261112-L3"))
def test_every_spelling_of_a_key_is_one_canonical_key(key: Key) -> None:
    canonical = {spelling: canonical_key(spelling) for spelling in key.spellings()}
    assert len(set(canonical.values())) == 1, canonical
    (found,) = set(canonical.values())
    assert found.startswith(GS1 + "/") and canonical_key(found) == found
    assert all(key_problem(s) is None for s in canonical)


@settings(max_examples=300, deadline=None)
@given(keys(), keys())
def test_distinct_keys_never_collide(a: Key, b: Key) -> None:
    if a.identity != b.identity:
        assert canonical_key(a.spellings()[0]) != canonical_key(b.spellings()[0])
        assert canonical_key(a.spellings()[-1]) != canonical_key(b.spellings()[-1])


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"\Ahttps?://[a-z.]{1,9}(/[0-9a-z%]{0,20}){0,6}\Z"))
def test_any_input_has_a_key_and_keying_twice_changes_nothing(text: str) -> None:
    key = canonical_key(text)
    assert isinstance(key, str) and canonical_key(key) == key
    key_problem(text)  # never raises


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        (
            "https://id.parktrace.example/01/06907890000346/10/KN95-261112-L3/21/7GDYEY1GW29XR9EG",
            f"{GS1}/01/06907890000346/21/7GDYEY1GW29XR9EG",
        ),
        ("urn:epc:id:sgtin:0614141.107346.2017", f"{GS1}/01/10614141073464/21/2017"),
        ("urn:epc:class:lgtin:4012345.012345.998877", f"{GS1}/01/04012345123456/10/998877"),
        ("urn:epc:idpat:sgtin:4012345.012345.*", f"{GS1}/01/04012345123456"),
        ("urn:epc:id:sscc:4012345.0000000333", f"{GS1}/00/040123450000003338"),
        ("urn:epc:id:sgln:4012345.00001.0", f"{GS1}/414/4012345000016"),
        ("https://a.example/414/4012345000016/254/0", f"{GS1}/414/4012345000016"),
        ("http://id.gs1.org/01/12345670", f"{GS1}/01/00000012345670"),
        # Not GS1 keys, or not valid ones: their own key.
        ("https://example.org/site/dock-3", "https://example.org/site/dock-3"),
        ("urn:uuid:2b0f0c5e-0001", "urn:uuid:2b0f0c5e-0001"),
        ("urn:epc:idpat:sgtin:4012345.*.*", "urn:epc:idpat:sgtin:4012345.*.*"),
        (
            "https://id.gs1.org/01/06907890000347/21/X",
            "https://id.gs1.org/01/06907890000347/21/X",
        ),
    ],
)
def test_known_spellings(spelling: str, key: str) -> None:
    assert canonical_key(spelling) == key


@pytest.mark.parametrize(
    ("identifier", "rule"),
    [
        ("https://id.gs1.org/01/06907890000347", "gtin-check-digit"),
        ("https://res.example/gtin/6907890000347/ser/1", "gtin-check-digit"),
        ("https://id.gs1.org/00/040123450000003339", "sscc-check-digit"),
        ("https://id.gs1.org/414/4012345000017/254/1", "gln-check-digit"),
        ("https://id.gs1.org/01/06907890000346", None),
        ("urn:epc:id:sgtin:0614141.107346.2017", None),  # an EPC URN has no check digit
        ("https://news.example/01/2024", None),  # not digits of a GTIN's length
    ],
)
def test_check_digits(identifier: str, rule: str | None) -> None:
    found = key_problem(identifier)
    assert (found[0] if found else None) == rule
