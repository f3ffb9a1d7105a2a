"""The one Ed25519 acceptance rule every node applies, whichever library verifies.

OpenSSL (via `cryptography`) and libsodium (via PyNaCl) disagree on edge cases: OpenSSL
accepts small-order public keys and a small-order R, libsodium rejects them. A consortium
whose nodes disagreed on a signature would fork, so we decide here, before either library
sees the bytes: reject non-canonical public keys, small-order public keys, small-order R,
and S >= L. What passes these checks, both libraries judge identically.

The small-order encodings are derived from the curve equation, not pasted in.
"""

from __future__ import annotations

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)


def _sqrt(a: int) -> int | None:
    """Square root mod p (p = 5 mod 8), or None if `a` is not a square."""
    r = pow(a, (P + 3) // 8, P)
    if (r * r - a) % P:
        r = r * _SQRT_M1 % P
    return r if (r * r - a) % P == 0 else None


def _torsion_ys() -> set[int]:
    """y-coordinates of the 8 points of order dividing 8 on edwards25519 (-x^2+y^2=1+dx^2y^2).

    Order 1: y=1. Order 2: y=-1. Order 4: y=0. Order 8: points whose double has y=0,
    i.e. y^2 = -x^2, which on the curve gives d*y^4 + 2*y^2 - 1 = 0.
    """
    ys = {1, P - 1, 0}
    inv_d = pow(D, P - 2, P)
    root = _sqrt((1 + D) % P)
    assert root is not None
    for s in (root, P - root):
        y2 = (-1 + s) * inv_d % P
        y = _sqrt(y2)
        if y is not None:
            ys.update({y, P - y})
    return ys


def _encodings(ys: set[int]) -> frozenset[bytes]:
    """Every 32-byte string that decodes to a point with one of these y (any sign bit),
    including non-canonical aliases y + p < 2^255."""
    out: set[bytes] = set()
    for y in ys:
        for value in (y, y + P):
            if value < 2**255:
                for sign in (0, 1):
                    out.add((value | (sign << 255)).to_bytes(32, "little"))
    return frozenset(out)


SMALL_ORDER_ENCODINGS = _encodings(_torsion_ys())


def is_canonical_point(encoding: bytes) -> bool:
    """The y-coordinate is reduced mod p."""
    y = int.from_bytes(encoding, "little") & ((1 << 255) - 1)
    return y < P


def check_public_key(key: bytes) -> str | None:
    """Why this public key is unacceptable, or None."""
    if len(key) != 32:
        return f"Ed25519 public key must be 32 bytes, got {len(key)}"
    if not is_canonical_point(key):
        return "Ed25519 public key is not canonically encoded"
    if key in SMALL_ORDER_ENCODINGS:
        return "Ed25519 public key has small order"
    return None


def check_signature(signature: bytes) -> str | None:
    """Why this signature is unacceptable before any curve arithmetic, or None."""
    if len(signature) != 64:
        return f"Ed25519 signature must be 64 bytes, got {len(signature)}"
    if signature[:32] in SMALL_ORDER_ENCODINGS:
        return "Ed25519 signature R has small order"
    if int.from_bytes(signature[32:], "little") >= L:
        return "Ed25519 signature S is not reduced (S >= L): malleated signature"
    return None
