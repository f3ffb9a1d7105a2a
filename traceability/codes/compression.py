"""Compressed GS1 Digital Link URIs (GS1 Digital Link: Compression), decompressed.

A compressed URI carries its element strings as one path segment of URI-safe base64
(`https://id.gs1.org/ARHKVAdpQg` is `/01/09780345418913`). The bits are read as a
sequence of entries, each introduced by 8 bits read as two hex digits:

* `00`–`99`: an AI. Table P says how many digits the AI has (2, 3 or 4; the third and
  fourth digits follow as 4 bits each); its value follows in the AI's format.
* an optimisation code (`0A`, `1A`, `9D`, …): a fixed sequence of AIs, then their values
  one after the other.
* `F` then 7 bits: a non-GS1 key=value pair (key in base64, then the value as below).

Values: a numeric component of fixed length n is ⌈n·log₂10 + 0.01⌉ bits of a number,
left-padded with zeros; a variable-length numeric one is first ⌊log₂ max⌋+1 bits giving
its length. An alphanumeric component starts with a 3-bit encoding (0 digits, 1 lower
hex, 2 upper hex, 3 base64, 4 seven-bit ASCII), then its length (variable-length
components), then the characters. Trailing bits shorter than one entry are padding.

A resolver must decompress what it is handed and answer the uncompressed URI; this one
knows the formats of the keys it serves (GTIN, SSCC, GLN), their qualifiers and the data
attributes it reads (`FORMATS`). Any other AI is refused by name, never guessed.
"""

from __future__ import annotations

import math
import re

from traceability.codes import CodeError

SAFE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEX = "0123456789ABCDEF"
#: A path segment that can only be a compressed Digital Link: URI-safe base64, long enough
#: to hold at least an AI and a GTIN (10 characters, 60 bits).
COMPRESSED = re.compile(r"^[A-Za-z0-9_-]{10,}$")
#: Table P: the number of digits of the AIs that start with these two digits.
AI_DIGITS = {
    **dict.fromkeys(
        ("00", "01", "02", "10", "11", "12", "13", "15", "16", "17", "20", "21", "22"), 2
    ),
    **dict.fromkeys(("23", "24", "25", "40", "41", "42", "71"), 3),
    **dict.fromkeys(("30", "37", "90", "91", "92", "93", "94", "95", "96", "97", "98", "99"), 2),
    **dict.fromkeys(("31", "32", "33", "34", "35", "36", "39", "43", "70", "72", "80", "81"), 4),
    "82": 4,
}
#: Value formats of the AIs this resolver decompresses: components of (kind, length,
#: fixed), kind N numeric or X alphanumeric.
FORMATS: dict[str, tuple[tuple[str, int, bool], ...]] = {
    "00": (("N", 18, True),),
    "01": (("N", 14, True),),
    "10": (("X", 20, False),),
    "21": (("X", 20, False),),
    "22": (("X", 20, False),),
    "254": (("X", 20, False),),
    "414": (("N", 13, True),),
    **{ai: (("N", 6, True),) for ai in ("11", "12", "13", "15", "16", "17", "7006")},
    "7003": (("N", 10, True),),
    "7007": (("N", 6, True), ("N", 6, False)),
    **{ai: (("N", 3, True),) for ai in ("422", "424", "426")},
    "427": (("X", 3, False),),
    "30": (("N", 8, False),),
    "37": (("N", 8, False),),
    **{f"310{d}": (("N", 6, True),) for d in range(6)},
    **{f"723{d}": (("X", 30, False),) for d in range(10)},
}
#: Optimisation codes: AIs that commonly go together, written as one entry.
SEQUENCES = {
    "0A": ("01", "22"),
    "0B": ("01", "10"),
    "0C": ("01", "21"),
    "0D": ("01", "17"),
    "0E": ("01", "7003"),
    "0F": ("01", "30"),
    "1A": ("01", "10", "21", "17"),
    "1B": ("01", "15"),
    "1C": ("01", "11"),
    "1D": ("01", "16"),
    "1F": ("01", "10", "15"),
    **{f"2{'ABCDEF'[d]}": ("01", f"310{d}") for d in range(6)},
    "9D": ("414", "254"),
}


def _length_bits(maximum: int) -> int:
    return maximum.bit_length()


def _value_bits(digits: int) -> int:
    return math.ceil(digits * math.log2(10) + 0.01)


class _Bits:
    """A cursor over the bits of a base64 segment; reading past the end is an error."""

    def __init__(self, segment: str) -> None:
        self.bits = "".join(f"{SAFE64.index(c):06b}" for c in segment)
        self.at = 0

    def left(self) -> int:
        return len(self.bits) - self.at

    def take(self, n: int) -> str:
        if n > self.left():
            raise CodeError("path", "compression", "the compressed Digital Link ends too soon")
        out = self.bits[self.at : self.at + n]
        self.at += n
        return out

    def number(self, n: int) -> int:
        return int(self.take(n), 2) if n else 0

    def hex_digit(self) -> str:
        return _HEX[self.number(4)]


def _characters(bits: _Bits, encoding: int, count: int) -> str:
    if encoding == 0:
        return str(bits.number(_value_bits(count))).zfill(count) if count else ""
    if encoding in (1, 2):
        text = "".join(_HEX[bits.number(4)] for _ in range(count))
        return text.lower() if encoding == 1 else text
    if encoding == 3:
        return "".join(SAFE64[bits.number(6)] for _ in range(count))
    if encoding == 4:
        return "".join(chr(bits.number(7)) for _ in range(count))
    raise CodeError("path", "compression", f"unknown character encoding {encoding}")


def _value(bits: _Bits, ai: str) -> str:
    formats = FORMATS.get(ai)
    if formats is None:
        raise CodeError(
            "path",
            "compression",
            f"AI {ai} in the compressed Digital Link is not one this resolver reads",
        )
    out = ""
    for kind, length, fixed in formats:
        if kind == "N":
            digits = length if fixed else bits.number(_length_bits(length))
            if digits > length:
                raise CodeError(
                    "path", "compression", f"AI {ai}: {digits} digits, at most {length}"
                )
            out += str(bits.number(_value_bits(digits))).zfill(digits) if digits else ""
        else:
            encoding = bits.number(3)
            count = length if fixed else bits.number(_length_bits(length))
            out += _characters(bits, encoding, count)
    return out


def _other_pair(bits: _Bits) -> tuple[str, str]:
    """A non-GS1 key=value pair: 7 bits of key length, the key in base64, then a value of
    3 bits of encoding, 7 bits of length and its characters."""
    size = bits.number(7)
    key = "".join(SAFE64[bits.number(6)] for _ in range(size))
    encoding = bits.number(3)
    return key, _characters(bits, encoding, bits.number(7))


def decompress(segment: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(AI, value) element strings and other key=value pairs of a compressed segment, in
    the order written. CodeError (rule `compression`) if it is not one."""
    if not COMPRESSED.fullmatch(segment):
        raise CodeError("path", "compression", "not a compressed GS1 Digital Link")
    bits = _Bits(segment)
    elements: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    while bits.left() > 8:
        h1, h2 = bits.hex_digit(), bits.hex_digit()
        code = h1 + h2
        if code.isdigit():
            digits = AI_DIGITS.get(code)
            if digits is None:
                raise CodeError("path", "compression", f"no GS1 AI starts with {code}")
            ai = code + "".join(bits.hex_digit() for _ in range(digits - 2))
            if not ai.isdigit():
                raise CodeError("path", "compression", f"AI {ai} is not all digits")
            elements.append((ai, _value(bits, ai)))
        elif code in SEQUENCES:
            elements += [(ai, _value(bits, ai)) for ai in SEQUENCES[code]]
        elif h1 == "F":
            bits.at -= 4  # the key length starts right after the F
            others.append(_other_pair(bits))
        else:
            raise CodeError("path", "compression", f"no optimisation is defined for {code}")
    if not elements:
        raise CodeError("path", "compression", "the compressed Digital Link holds no GS1 key")
    return elements, others
