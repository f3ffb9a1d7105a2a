"""Ed25519: RFC 8032 vectors, and proof that the fast path (libsodium) and the reference
path (OpenSSL via cryptography) accept and reject exactly the same inputs."""

from __future__ import annotations

import hashlib
import json
import random
import stat
from pathlib import Path

import pytest

from ledger import ed25519_rules
from ledger.crypto import ED25519, ED25519_OPENSSL, PrivateKey, PublicKey
from ledger.errors import EncodingError, SchemeError

VECTORS = json.loads((Path(__file__).parent / "vectors/ed25519/rfc8032.json").read_text())["cases"]
L = ed25519_rules.L


@pytest.mark.parametrize("case", VECTORS, ids=lambda c: c["public"][:8])
def test_rfc8032_vectors(case: dict[str, str]) -> None:
    key = PrivateKey.from_seed(bytes.fromhex(case["secret"]))
    message = bytes.fromhex(case["message"])
    assert key.public_key.key.hex() == case["public"]
    assert key.sign(message).hex() == case["signature"]
    signature = bytes.fromhex(case["signature"])
    for backend in (ED25519, ED25519_OPENSSL):
        assert backend.verify(key.public_key.key, signature, message)
        assert not backend.verify(key.public_key.key, signature, message + b"!")


def _r_identity_signature(key: PrivateKey, message: bytes) -> bytes:
    """A signature whose R is the identity point, made by the key's owner: OpenSSL alone
    would accept it, libsodium alone would reject it."""
    from cryptography.hazmat.primitives import serialization

    seed = key.crypto_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    a = int.from_bytes(h, "little")
    r = (1).to_bytes(32, "little")
    k = int.from_bytes(hashlib.sha512(r + key.public_key.key + message).digest(), "little") % L
    return r + (k * a % L).to_bytes(32, "little")


def _edge_cases() -> list[tuple[str, bytes, bytes, bytes]]:
    rng = random.Random(8032)
    key = PrivateKey.from_seed(bytes(rng.getrandbits(8) for _ in range(32)))
    other = PrivateKey.from_seed(bytes(rng.getrandbits(8) for _ in range(32)))
    msg = b"parktrace"
    good = key.sign(msg)
    pub = key.public_key.key
    s = int.from_bytes(good[32:], "little")
    cases = [
        ("valid", pub, good, msg),
        ("wrong message", pub, good, b"parktracf"),
        ("wrong key", other.public_key.key, good, msg),
        ("malleated S+L", pub, good[:32] + (s + L).to_bytes(32, "little"), msg),
        ("S = L", pub, good[:32] + L.to_bytes(32, "little"), msg),
        ("S all ones", pub, good[:32] + b"\xff" * 32, msg),
        ("flipped R bit", pub, bytes([good[0] ^ 1]) + good[1:], msg),
        ("R identity, owner-made", pub, _r_identity_signature(key, msg), msg),
        ("truncated", pub, good[:63], msg),
        ("empty signature", pub, b"", msg),
        ("short key", pub[:31], good, msg),
    ]
    # Every small-order encoding, canonical or not, as the key and as R.
    for enc in sorted(ed25519_rules.SMALL_ORDER_ENCODINGS):
        cases.append((f"small-order key {enc.hex()[:6]}", enc, enc + bytes(32), msg))
        cases.append((f"small-order R {enc.hex()[:6]}", pub, enc + good[32:], msg))
    # Non-canonical public key encodings (y >= p) that are not small-order.
    for y in range(ed25519_rules.P, 2**255):
        enc = y.to_bytes(32, "little")
        cases.append((f"non-canonical key y=p+{y - ed25519_rules.P}", enc, good, msg))
    # Random garbage.
    for i in range(200):
        cases.append(
            (
                f"random {i}",
                bytes(rng.getrandbits(8) for _ in range(32)),
                bytes(rng.getrandbits(8) for _ in range(64)),
                msg,
            )
        )
    return cases


EDGE_CASES = _edge_cases()


@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda c: c[0])
def test_backends_agree(case: tuple[str, bytes, bytes, bytes]) -> None:
    name, key, signature, message = case
    fast = ED25519.verify(key, signature, message)
    reference = ED25519_OPENSSL.verify(key, signature, message)
    assert fast == reference, name
    assert fast == (name == "valid"), name


def test_raw_backends_do_disagree_without_the_rules() -> None:
    """Why ed25519_rules exists: the libraries alone judge an owner-made R=identity
    signature differently. If this ever stops failing, the rules are still harmless."""
    from ledger.crypto import _verify_libsodium, _verify_openssl

    key = PrivateKey.from_seed(bytes(range(32)))
    sig = _r_identity_signature(key, b"m")
    assert _verify_openssl(key.public_key.key, sig, b"m") is True
    assert _verify_libsodium(key.public_key.key, sig, b"m") is False


def test_small_order_set_matches_known_count() -> None:
    # 7 distinct y values' canonical encodings plus sign-bit and y+p aliases.
    canonical = {
        e for e in ed25519_rules.SMALL_ORDER_ENCODINGS if ed25519_rules.is_canonical_point(e)
    }
    assert (1).to_bytes(32, "little") in canonical  # identity
    assert bytes(32) in canonical  # order 4
    assert len({e[:31] + bytes([e[31] & 0x7F]) for e in canonical}) == 5


def test_pem_roundtrip_with_passphrase_and_mode(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "keys" / "org.pem"
    key.save(path, passphrase=b"orange")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in path.read_bytes()
    loaded = PrivateKey.load(path, b"orange")
    assert loaded.public_key == key.public_key
    with pytest.raises(EncodingError, match="cannot load private key"):
        PrivateKey.load(path, b"wrong")
    plain = tmp_path / "plain.pem"
    key.save(plain)
    assert PrivateKey.load(plain).public_key == key.public_key


def test_public_key_json_and_unknown_scheme() -> None:
    key = PrivateKey.generate().public_key
    assert PublicKey.from_json(key.to_json()) == key
    with pytest.raises(SchemeError, match="unknown signature scheme 'rsa'"):
        PublicKey.from_json({"scheme": "rsa", "key": key.to_json()["key"]})
    with pytest.raises(EncodingError, match="small order"):
        PublicKey("ed25519", (1).to_bytes(32, "little"))
