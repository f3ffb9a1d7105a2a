"""A minimal PNG writer for QR module matrices: 1-bit greyscale, each module `scale`
pixels square, with a quiet zone. Deterministic bytes, and fast enough for a label line
(several thousand images a second on one core), which is why it is not a general encoder:
the repeated pixel rows of a module use PNG's "Up" filter (all zeros) and zlib's fastest
level, which compresses them about as well as level 6 at a third of the time.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A matrix byte of 0 is a dark module, anything else light (zxing-cpp's image values).
_BITS = bytes.maketrans(bytes(range(256)), b"0" + b"1" * 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=32)
def _expansion(scale: int) -> tuple[bytes, ...]:
    """For each byte of 8 pixels-as-modules, the `scale` bytes of those modules widened."""
    table = []
    for value in range(256):
        bits = "".join(bit * scale for bit in f"{value:08b}")
        table.append(int(bits, 2).to_bytes(scale, "big"))
    return tuple(table)


def qr_png(modules: bytes, size: int, *, scale: int = 8, quiet: int = 4) -> bytes:
    """PNG of a `size`×`size` module matrix (row-major bytes, 0 = dark)."""
    if len(modules) != size * size:
        raise ValueError("module matrix does not match its size")
    table = _expansion(scale)
    total = size + 2 * quiet
    width = total * scale
    row_bytes = (width + 7) // 8
    repeat = (b"\x02" + bytes(row_bytes)) * (scale - 1)  # filter Up: same as the row above
    light_row = b"\x00" + b"\xff" * row_bytes + repeat
    margin = "1" * quiet
    pad = "1" * (-(total) % 8)
    rows = [light_row * quiet]
    for y in range(size):
        bits = margin + modules[y * size : (y + 1) * size].translate(_BITS).decode() + margin + pad
        packed = int(bits, 2).to_bytes(len(bits) // 8, "big")
        line = b"".join([table[b] for b in packed])[:row_bytes]
        rows.append(b"\x00" + line + repeat)
    rows.append(light_row * quiet)
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 1))
        + _chunk(b"IEND", b"")
    )
