"""Keyed serials and the batch record: serials are deterministic for the key, unrelated
to their index to anyone without it, checkable in O(1) by whoever holds it, refused
beyond the recorded count; the batch key travels only sealed to the resolver key; the
batch payload is small and strictly parsed."""

from __future__ import annotations

import itertools
import random

import pytest

from traceability.codes import CodeError
from traceability.codes.batch import new_batch, parse_payload
from traceability.codes.digital_link import build
from traceability.codes.sealing import ResolverKey, commitment
from traceability.codes.serials import ALPHABET, MAX_COUNT, SERIAL_LENGTH, SerialKey, decode

RNG = random.Random(42)
KEY = SerialKey.derive(RNG.randbytes(32), RNG.randbytes(16))
RESOLVER = ResolverKey.from_seed(b"serial tests")


def test_serials_are_16_crockford_characters_and_deterministic() -> None:
    serials = [KEY.serial(i) for i in range(2000)]
    assert len(set(serials)) == 2000
    assert all(len(s) == SERIAL_LENGTH and set(s) <= set(ALPHABET) for s in serials)
    assert serials[17] == KEY.serial(17)
    assert not {"I", "L", "O", "U"} & set("".join(serials))


def test_serials_do_not_follow_their_index() -> None:
    """Neighbouring indices share no structure: per character position, serials of
    consecutive indices agree about as often as random strings (1 in 32)."""
    serials = [KEY.serial(i) for i in range(3000)]
    same = sum(a[p] == b[p] for a, b in itertools.pairwise(serials) for p in range(SERIAL_LENGTH))
    rate = same / (len(serials) - 1) / SERIAL_LENGTH
    assert 0.02 < rate < 0.045
    assert serials != sorted(serials)


def test_a_key_holder_finds_the_index_of_a_serial() -> None:
    for index in (0, 1, 999, 4095, MAX_COUNT - 1):
        assert KEY.index_of(KEY.serial(index), MAX_COUNT) == index


def test_serials_beyond_the_recorded_count_are_refused() -> None:
    assert KEY.index_of(KEY.serial(100), 101) == 100
    assert KEY.index_of(KEY.serial(100), 100) is None


def test_forged_and_altered_serials_are_refused() -> None:
    genuine = KEY.serial(5)
    for position in range(SERIAL_LENGTH):
        for replacement in "0Z":
            altered = genuine[:position] + replacement + genuine[position + 1 :]
            if altered != genuine:
                assert KEY.index_of(altered, MAX_COUNT) is None
    rng = random.Random(1)
    forged = ("".join(rng.choice(ALPHABET) for _ in range(16)) for _ in range(20_000))
    assert not any(KEY.index_of(s, MAX_COUNT) is not None for s in forged)
    other = SerialKey.derive(bytes(32), KEY.batch)
    assert other.index_of(genuine, MAX_COUNT) is None
    for junk in ("", "abc", genuine.lower(), genuine + "0", "I" * 16):
        assert KEY.index_of(junk, MAX_COUNT) is None
        assert decode(junk) is None


def test_the_batch_key_is_sealed_to_the_resolver_key_only() -> None:
    link = build("6907890000346", "L1")
    batch, key = new_batch(link, 1000, [RESOLVER.public], "id.parktrace.example")
    payload = batch.payload()
    text = repr(payload)
    assert key.hex() not in text and key not in repr(payload).encode()
    assert payload["keyCommitment"] == commitment(key)
    sealed = payload["sealedKeys"][0]
    assert sealed["key"] == RESOLVER.id
    assert RESOLVER.open(sealed["box"], payload["keyCommitment"]) == key
    stranger = ResolverKey.from_seed(b"someone else")
    assert stranger.open(sealed["box"], payload["keyCommitment"]) is None
    assert RESOLVER.open(sealed["box"], commitment(bytes(32))) is None
    assert len(repr(payload)) < 1000  # the same size for a million codes
    million, _ = new_batch(link, MAX_COUNT, [RESOLVER.public], "id.parktrace.example")
    assert abs(len(repr(million.payload())) - len(text)) < 10


def test_a_recorded_payload_parses_back() -> None:
    link = build("6907890000346", "L1", attributes={"17": "291111"})
    batch, _ = new_batch(link, 12, [RESOLVER.public], "id.parktrace.example", names={"en": "M"})
    again = parse_payload(batch.payload())
    assert again == batch


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"count": 0}, "payload.count"),
        ({"count": MAX_COUNT + 1}, "payload.count"),
        ({"count": True}, "payload.count"),
        ({"gtin": "06907890000347"}, "payload.gtin"),
        ({"lot": "https://id.gs1.org/01/06907890000346/10/L2"}, "payload.lot"),
        ({"batch": "XYZ"}, "payload.batch"),
        ({"serials": "sequential"}, "payload.serials"),
        ({"sealedKeys": []}, "payload.sealedKeys"),
        ({"keyCommitment": "00"}, "payload.keyCommitment"),
        ({"resolver": "Not A Host"}, "payload.resolver"),
        ({"names": {"fr": "x"}}, "payload.names"),
        ({"extra": 1}, "payload.extra"),
        ({"attributes": {"7007": "2611"}}, "payload.attributes.7007"),
    ],
)
def test_malformed_payloads_name_the_field(change: dict, field: str) -> None:
    batch, _ = new_batch(build("6907890000346", "L1"), 5, [RESOLVER.public], "a.example")
    with pytest.raises(CodeError) as caught:
        parse_payload({**batch.payload(), **change})
    assert caught.value.field == field


def test_resolver_key_files_round_trip(tmp_path) -> None:
    key = ResolverKey.generate()
    path = tmp_path / "resolver.key"
    path.write_text(key.text())
    assert ResolverKey.load(path).id == key.id
    with pytest.raises(ValueError):
        ResolverKey.from_text("something else")
