"""Printable outputs of a batch: a ZIP of QR images and a PDF label sheet.

Labels are A4 sheets of 4 × 10 labels (48 × 27 mm): the QR code, then the GS1
human-readable interpretation ((01) GTIN, (10) lot, (21) serial) beside it, so a person
can read what a scanner reads. Codes are embedded as 1-bit PNGs at 4 pixels a module,
sharp at any print size.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fpdf import FPDF

from traceability.codes.digital_link import DigitalLink

from . import render
from .png import qr_png


@dataclass(frozen=True)
class LabelLayout:
    columns: int = 4
    rows: int = 10
    left: float = 8.0  # mm
    top: float = 13.5
    width: float = 48.5
    height: float = 27.0
    qr: float = 22.0

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


Progress = Callable[[int], None]


def label_pdf(
    codes: Iterable[tuple[DigitalLink, str]],
    *,
    title: str = "",
    ec: str = render.DEFAULT_EC,
    layout: LabelLayout = LabelLayout(),
    progress: Progress | None = None,
) -> bytes:
    """A PDF label sheet of (link, URI) pairs; `progress(n)` after every n labels."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_title(title or "ParkTrace labels")
    pdf.set_creator("ParkTrace")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=6.5)
    for n, (link, uri) in enumerate(codes):
        slot = n % layout.per_page
        if slot == 0:
            pdf.add_page()
            if title:
                pdf.set_xy(layout.left, 5)
                pdf.cell(text=title)
        x = layout.left + (slot % layout.columns) * layout.width
        y = layout.top + (slot // layout.columns) * layout.height
        m = render.matrix(uri, ec)
        image = qr_png(m.modules, m.size, scale=4, quiet=render.QUIET_ZONE)
        pdf.image(io.BytesIO(image), x=x, y=y, w=layout.qr, h=layout.qr)
        lines = [f"(01) {link.gtin}"]
        if link.lot is not None:
            lines.append(f"(10) {link.lot}")
        if link.serial is not None:
            lines.append(f"(21) {link.serial}")
        for i, line in enumerate(lines):
            pdf.text(x=x + layout.qr + 0.5, y=y + 6 + i * 3.2, text=line)
        if progress is not None:
            progress(1)
    return bytes(pdf.output())


def qr_zip(
    codes: Iterable[tuple[str, str]],
    *,
    formats: tuple[str, ...] = ("png",),
    ec: str = render.DEFAULT_EC,
    scale: int = render.DEFAULT_SCALE,
    progress: Progress | None = None,
) -> bytes:
    """A ZIP of (file stem, URI) codes, one file per format, plus codes.csv."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        index = ["file,uri"]
        for stem, uri in codes:
            if "png" in formats:
                archive.writestr(f"png/{stem}.png", render.png(uri, ec=ec, scale=scale))
            if "svg" in formats:
                archive.writestr(
                    f"svg/{stem}.svg",
                    render.svg(uri, ec=ec, scale=scale),
                    compress_type=zipfile.ZIP_DEFLATED,
                )
            index.append(f"{stem},{uri}")
            if progress is not None:
                progress(1)
        archive.writestr("codes.csv", "\n".join(index) + "\n", compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
