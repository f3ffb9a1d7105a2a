"""Canonical bytes: RFC 8785's own test data, our committed vectors, domain separation."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from ledger import codec
from ledger.block import Vote
from ledger.crypto import PrivateKey
from ledger.errors import DomainError, EncodingError
from ledger.tx import Transaction

VECTORS = Path(__file__).parent / "vectors" / "jcs"
RFC = json.loads((VECTORS / "rfc8785.json").read_text())


@pytest.mark.parametrize("case", RFC["documents"], ids=lambda c: c["name"])
def test_rfc8785_documents(case: dict[str, str]) -> None:
    assert codec.canonical(json.loads(case["input"])).hex() == case["canonical_hex"]


@pytest.mark.parametrize("case", RFC["numbers"], ids=lambda c: c["ieee754_hex"])
def test_rfc8785_numbers(case: dict[str, str]) -> None:
    value = struct.unpack(">d", bytes.fromhex(case["ieee754_hex"]))[0]
    assert codec.canonical(value).decode() == case["canonical"]


def test_unrepresentable_values_are_rejected() -> None:
    for bad in (float("nan"), float("inf"), 2**60, b"bytes"):
        with pytest.raises(EncodingError):
            codec.canonical({"x": bad})


def sample_objects() -> dict[str, tuple[str, object]]:
    """Our own objects, built deterministically: a transaction body and a vote."""
    key = PrivateKey.from_seed(hashlib.sha256(b"parktrace vectors").digest())
    tx = Transaction.create(
        key,
        chain_id="parktrace-vectors",
        type="epcis.event",
        payload={
            "event": {
                "type": "ObjectEvent",
                "eventTime": "2026-11-02T08:00:00.000+08:00",
                "eventTimeZoneOffset": "+08:00",
                "epcList": ["https://id.gs1.org/01/06901234567892/10/GN2026-11/21/A7K2"],
                "action": "OBSERVE",
                "bizStep": "commissioning",
                "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
                "ex:note": "赣南脐橙 Gannan navel orange",
            }
        },
        signer="ab" * 32,
        timestamp="2026-11-02T00:00:00.000Z",
        nonce=bytes(range(16)),
    )
    vote = Vote("parktrace-vectors", 7, 1, "precommit", "cd" * 32, "node-1").signed(key)
    return {"tx": ("tx", tx.body()), "vote": ("vote", vote.sign_body())}


def test_parktrace_vectors_are_stable() -> None:
    """If this fails, every existing chain's ids and hashes would change: a hard fork."""
    expected = json.loads((VECTORS / "parktrace.json").read_text())
    for name, (domain, obj) in sample_objects().items():
        assert codec.domain_bytes(domain, obj).hex() == expected[name]["tagged_hex"], name
        assert codec.digest(domain, obj).hex() == expected[name]["sha256"], name


def test_domains_separate_signed_bytes() -> None:
    obj = {"a": 1}
    tagged = {d: codec.domain_bytes(d, obj) for d in codec.DOMAINS}
    assert len(set(tagged.values())) == len(codec.DOMAINS)
    with pytest.raises(DomainError):
        codec.domain_bytes("TX", obj)
    with pytest.raises(DomainError):
        codec.domain_bytes("nonsense", obj)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not base64!", "not valid base64"),
        ("QQ", "not valid base64"),
        ("QR==", "canonical form"),
        (12, "expected a base64 string"),
    ],
)
def test_strict_base64(text: object, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem):
        codec.b64decode(text)


def write_vectors() -> None:  # pragma: no cover - run by hand when adding a vector
    out = {
        name: {
            "domain": domain,
            "tagged_hex": codec.domain_bytes(domain, obj).hex(),
            "sha256": codec.digest(domain, obj).hex(),
        }
        for name, (domain, obj) in sample_objects().items()
    }
    (VECTORS / "parktrace.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":  # pragma: no cover
    write_vectors()


# -- the fast path equals the reference implementation ------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_keys = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
    max_size=6,
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1500, derandomize=True, database=None)
@given(_json)
def test_fast_path_matches_rfc8785(value: object) -> None:
    assert codec.canonical(value) == codec.reference_canonical(value)


def test_fast_path_edge_cases() -> None:
    tricky = [
        {"\U0001f600": 1, "\ufb33": 2},  # UTF-16 order differs from code point order
        {"a": 1.0, "b": [0.1, 1e21, -0.0]},
        {"ctl": '\x00\x1f\x7f\u2028"\\/'},
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        ["é", "\U0001f34a", {"z": {"y": []}}],
    ]
    for value in tricky:
        assert codec.canonical(value) == codec.reference_canonical(value)
    with pytest.raises(EncodingError):
        codec.canonical({"lone": "\ud800"})
    with pytest.raises(EncodingError):
        codec.canonical({1: "int key"})


@settings(max_examples=1500, derandomize=True, database=None)
@given(_json, st.booleans())
def test_loads_with_canonical_is_loads_and_canonical(value: object, ascii_only: bool) -> None:
    """Whatever the text, the value is json.loads's, and an encoding given is RFC 8785's."""
    for raw in (
        codec.reference_canonical(value),
        json.dumps(value, ensure_ascii=ascii_only).encode(),  # escapes, spaces, key order
    ):
        parsed, canonical = codec.loads_with_canonical(raw)
        assert parsed == json.loads(raw)
        if canonical is not None:
            assert canonical == codec.reference_canonical(parsed)


def test_loads_with_canonical_leaves_the_unusual_to_the_general_path() -> None:
    for text in ('{"a":1.5}', '{"a":9007199254740993}', '{"\\ud83d\\ude00":1}', '{"a":NaN}'):
        assert codec.loads_with_canonical(text.encode())[1] is None
    assert codec.loads_with_canonical('{"b":"é","a":[1]}'.encode()) == (
        {"b": "é", "a": [1]},
        '{"a":[1],"b":"é"}'.encode(),
    )


@settings(max_examples=1500, derandomize=True, database=None)
@given(_json)
def test_canonical_bytes_read_back_to_the_same_canonical_bytes(value: object) -> None:
    """What is signed is stored as canonical text and re-encoded by every verifier: the
    text must parse to a value whose canonical bytes are that text."""
    raw = codec.canonical(value)
    assert codec.canonical(json.loads(raw)) == raw
    parsed, fast = codec.loads_with_canonical(raw)
    assert (fast or codec.canonical(parsed)) == raw


def test_a_large_integral_double_reads_back_as_an_integer_that_still_encodes() -> None:
    # JCS prints these doubles as plain digits, which parse as integers beyond 2^53.
    for double in (-5.930487043246882e16, 2.0**53, 2.9514790517935283e20):
        raw = codec.canonical({"q": double})
        assert b"." not in raw and b"e" not in raw
        assert codec.canonical(json.loads(raw)) == raw
    for not_a_double in (2**53 + 1, 2**60, -(10**20) - 1):  # no double has these digits
        with pytest.raises(EncodingError):
            codec.canonical({"q": not_a_double})
