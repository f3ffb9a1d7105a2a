"""QR codes of Digital Link URIs: module matrices from the C++ encoder of zxing-cpp, drawn
as PNG (api.codes.png) or SVG here.

The encoder is zxing-cpp because a label line prints thousands of codes a minute: the
pure-Python `qrcode` package manages ~100 PNGs a second on one core, zxing-cpp plus the
PNG writer ~2,000 (bench/codes.py measures both). Both encode the same text in byte mode
at the same error-correction level; the tests decode what we draw with a real decoder and
compare with the URI, so equal content is checked, not assumed. `baseline_png` keeps the
pure-Python path for that comparison.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import zxingcpp

from .png import qr_png

EC_LEVELS = ("L", "M", "Q", "H")
DEFAULT_EC = "M"
DEFAULT_SCALE = 8
QUIET_ZONE = 4  # modules, as ISO/IEC 18004 asks
_DARK_RUN = re.compile(b"\x00+")


@dataclass(frozen=True)
class Matrix:
    size: int
    modules: bytes  # row-major, 0 = dark

    def dark(self, x: int, y: int) -> bool:
        return self.modules[y * self.size + x] == 0


def matrix(text: str, ec: str = DEFAULT_EC) -> Matrix:
    if ec not in EC_LEVELS:
        raise ValueError(f"error-correction level {ec!r}: expected one of L, M, Q, H")
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=ec)
    image = code.to_image(scale=1, add_quiet_zones=False)
    view = memoryview(image)
    return Matrix(view.shape[0], view.tobytes())


def png(text: str, *, ec: str = DEFAULT_EC, scale: int = DEFAULT_SCALE) -> bytes:
    m = matrix(text, ec)
    return qr_png(m.modules, m.size, scale=scale, quiet=QUIET_ZONE)


def svg(text: str, *, ec: str = DEFAULT_EC, scale: int = DEFAULT_SCALE) -> str:
    """SVG with one path of horizontal runs: small, crisp at any size, no raster."""
    m = matrix(text, ec)
    runs = []
    for y in range(m.size):
        row = m.modules[y * m.size : (y + 1) * m.size]
        for run in _DARK_RUN.finditer(row):
            width = run.end() - run.start()
            runs.append(f"M{run.start() + QUIET_ZONE} {y + QUIET_ZONE}h{width}v1h-{width}z")
    total = m.size + 2 * QUIET_ZONE
    pixels = total * scale
    title = text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {total} {total}" shape-rendering="crispEdges">'
        f"<title>{title}</title>"
        f'<rect width="{total}" height="{total}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    )


def baseline_png(text: str, *, ec: str = DEFAULT_EC, scale: int = DEFAULT_SCALE) -> bytes:
    """The same code through the pure-Python `qrcode` package (benchmark baseline)."""
    import qrcode

    levels = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    code = qrcode.QRCode(error_correction=levels[ec], box_size=scale, border=QUIET_ZONE)
    code.add_data(text.encode("utf-8"))
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()
