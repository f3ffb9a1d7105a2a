"""Keyed serials: the i-th serial of a batch is an authenticated, deterministic encryption
of i under the batch's secret key, so serials look random, cannot be made without the
key, and a holder of the key checks one in O(1) without a list of issued serials.

    K_tag, K_mask = HMAC(K, "tag"), HMAC(K, "mask")         (K: the batch's 32-byte key)
    tag    = HMAC-SHA256(K_tag, batch || i)[:7]              56-bit synthetic IV
    masked = i XOR HMAC-SHA256(K_mask, tag)[:3]              24-bit index, hidden
    serial = Crockford base32(tag || masked)                 16 characters (80 bits)

Checking reverses it: unmask i with the tag, recompute the tag of i, compare in constant
time, and require i < count. This is the SIV construction (Rogaway–Shrimpton): forging a
serial means predicting a 56-bit PRF output (probability 2^-56 a guess) and the serials
of distinct indices reveal nothing about each other. See docs/codes.md.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

SERIAL_SCHEME = "siv-hmac-sha256-56/crockford32-16"
SERIAL_LENGTH = 16
INDEX_BITS = 24
MAX_COUNT = 1 << INDEX_BITS  # serials per batch
KEY_BYTES = 32
_TAG_BYTES = 7
_MASK_BYTES = 3
#: Crockford's base32 (no I, L, O, U: nothing to misread when a serial is typed).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = str.maketrans(_RFC4648, ALPHABET)
_FROM_CROCKFORD = str.maketrans(ALPHABET, _RFC4648)
_ALPHABET_SET = frozenset(ALPHABET)


@dataclass(frozen=True)
class SerialKey:
    """The derived keys of one batch: whoever holds this can mint and check its serials."""

    batch: bytes  # 16-byte batch id, bound into every tag
    tag_key: bytes
    mask_key: bytes

    @classmethod
    def derive(cls, batch_key: bytes, batch: bytes) -> SerialKey:
        if len(batch_key) != KEY_BYTES:
            raise ValueError(f"a batch key has {KEY_BYTES} bytes")
        return cls(
            batch,
            hmac.digest(batch_key, b"parktrace/codes/v1/tag", "sha256"),
            hmac.digest(batch_key, b"parktrace/codes/v1/mask", "sha256"),
        )

    def _tag(self, index: int) -> bytes:
        return hmac.digest(self.tag_key, self.batch + index.to_bytes(4, "big"), "sha256")[
            :_TAG_BYTES
        ]

    def serial(self, index: int) -> str:
        if not 0 <= index < MAX_COUNT:
            raise ValueError(f"serial index {index} is outside 0..{MAX_COUNT - 1}")
        tag = self._tag(index)
        mask = int.from_bytes(hmac.digest(self.mask_key, tag, "sha256")[:_MASK_BYTES], "big")
        raw = tag + (index ^ mask).to_bytes(_MASK_BYTES, "big")
        return base64.b32encode(raw).decode("ascii").translate(_TO_CROCKFORD)

    def serials(self, start: int, stop: int) -> Iterator[str]:
        for index in range(start, stop):
            yield self.serial(index)

    def index_of(self, serial: str, count: int) -> int | None:
        """The index of a genuine serial of this batch (below `count`), else None."""
        raw = decode(serial)
        if raw is None:
            return None
        tag, masked = raw[:_TAG_BYTES], int.from_bytes(raw[_TAG_BYTES:], "big")
        mask = int.from_bytes(hmac.digest(self.mask_key, tag, "sha256")[:_MASK_BYTES], "big")
        index = masked ^ mask
        if index >= count:
            return None
        return index if hmac.compare_digest(self._tag(index), tag) else None


def decode(serial: str) -> bytes | None:
    """The 10 bytes a well-formed serial spells, or None for anything else."""
    if len(serial) != SERIAL_LENGTH or not set(serial) <= _ALPHABET_SET:
        return None
    return base64.b32decode(serial.translate(_FROM_CROCKFORD))


def looks_like_serial(serial: str) -> bool:
    return decode(serial) is not None
