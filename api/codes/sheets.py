"""Printable outputs of a batch: a ZIP of QR images and a PDF label sheet.

Labels are A4 sheets of 4 × 10 labels (48.5 × 27 mm): the QR code, beside it the product
name in Chinese, the GS1 human-readable interpretation ((01) GTIN, (10) lot) and the
dates, and below it the full (21) serial and "扫码验真", so a person can read what a
scanner reads. Text is placed in boxes of the layout that never overlap the code. Codes
are embedded as 1-bit PNGs at 4 pixels a module, sharp at any print size.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from traceability.codes.digital_link import DigitalLink

from . import render
from .png import qr_png


@dataclass(frozen=True)
class Box:
    """A rectangle on the page, in mm from the top left corner."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class LabelLayout:
    columns: int = 4
    rows: int = 10
    left: float = 8.0  # mm
    top: float = 13.5
    width: float = 48.5
    height: float = 27.0
    qr: float = 20.0
    margin: float = 1.0
    #: the bottom row (serial and "扫码验真"), below the code
    footer: float = 3.6

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def cell(self, slot: int) -> Box:
        x = self.left + (slot % self.columns) * self.width
        y = self.top + (slot // self.columns) * self.height
        return Box(x, y, self.width, self.height)

    def code(self, slot: int) -> Box:
        """Where the QR image of label `slot` goes (its quiet zone included)."""
        cell = self.cell(slot)
        return Box(cell.x + self.margin, cell.y + self.margin, self.qr, self.qr)

    def column(self, slot: int) -> Box:
        """The text beside the code: name, GTIN, lot, dates."""
        cell, code = self.cell(slot), self.code(slot)
        x = code.right + self.margin
        return Box(x, cell.y + self.margin, cell.right - self.margin - x, self.qr)

    def bottom_row(self, slot: int) -> Box:
        """The full serial and "扫码验真", across the label below the code."""
        cell = self.cell(slot)
        y = cell.bottom - self.margin - self.footer
        return Box(cell.x + self.margin, y, cell.w - 2 * self.margin, self.footer)


Progress = Callable[[int], None]
#: Fonts with Chinese glyphs, first found wins (Debian's fonts-noto-cjk, then
#: fonts-droid-fallback); PARKTRACE_LABEL_FONT names another TTF/TTC file.
CJK_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: SC
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)
VERIFY_TEXT = "扫码验真"
#: Font sizes (pt): what a line starts at and the least it may shrink to to fit.
SIZE, MIN_SIZE = 6.5, 4.2
_PT = 25.4 / 72  # mm per point


def cjk_font() -> tuple[str, int] | None:
    named = os.environ.get("PARKTRACE_LABEL_FONT")
    if named:
        return (named, 0) if Path(named).is_file() else None
    return next(((p, i) for p, i in CJK_FONTS if Path(p).is_file()), None)


def _day(value: str | None) -> str | None:
    """'2026-11-03' from a GS1 date (YYMMDD, DD 00 = the month)."""
    if not value or len(value) != 6 or not value.isdigit():
        return None
    day = value[4:6] if value[4:6] != "00" else "01"
    return f"20{value[:2]}-{value[2:4]}-{day}"


class _Sheet:
    """Text placed by the layout's boxes: each line is shrunk until it fits its box's
    width (the serial is never cut), and only a product name is shortened if it must."""

    def __init__(self, pdf: FPDF, cjk: bool) -> None:
        self.pdf = pdf
        self.cjk = cjk

    def font(self, chinese: bool, size: float) -> None:
        self.pdf.set_font("cjk" if chinese and self.cjk else "helvetica", size=size)

    def fit(self, text: str, width: float, chinese: bool, size: float = SIZE) -> float:
        while size > MIN_SIZE:
            self.font(chinese, size)
            if self.pdf.get_string_width(text) <= width:
                return size
            size -= 0.25
        self.font(chinese, MIN_SIZE)
        return MIN_SIZE

    def line(self, text: str, x: float, top: float, width: float, chinese: bool = False) -> float:
        """Draw `text` with its top at `top`; the top of the next line."""
        size = self.fit(text, width, chinese)
        while self.pdf.get_string_width(text) > width and len(text) > 1:
            text = text[:-2] + "…"
        self.pdf.text(x=x, y=top + size * _PT * 0.8, text=text)
        return top + size * _PT * 1.2


def label_pdf(
    codes: Iterable[tuple[DigitalLink, str]],
    *,
    title: str = "",
    ec: str = render.DEFAULT_EC,
    layout: LabelLayout = LabelLayout(),
    progress: Progress | None = None,
    names: dict[str, str] | None = None,
) -> bytes:
    """A PDF label sheet of (link, URI) pairs; `progress(n)` after every n labels.

    Each label: the QR code; beside it the product name in Chinese (`names["zh"]`, else
    English), (01) GTIN, (10) lot and the dates the link carries (7007 production, 17
    expiry); below it the full (21) serial and "扫码验真". Every line is placed in one of
    the layout's boxes (`LabelLayout.code/column/bottom_row`), which do not overlap."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_title(title or "ParkTrace labels")
    pdf.set_creator("ParkTrace")
    pdf.set_auto_page_break(False)
    font = cjk_font()
    if font is not None:
        pdf.add_font("cjk", fname=font[0], collection_font_number=font[1])
    sheet = _Sheet(pdf, font is not None)
    names = names or {}
    name = names.get("zh") if font is not None else None
    name = name or names.get("en") or ""
    for n, (link, uri) in enumerate(codes):
        slot = n % layout.per_page
        if slot == 0:
            pdf.add_page()
            if title:
                sheet.line(title, layout.left, 4, 190, chinese=True)
        code, column, bottom = layout.code(slot), layout.column(slot), layout.bottom_row(slot)
        m = render.matrix(uri, ec)
        image = qr_png(m.modules, m.size, scale=4, quiet=render.QUIET_ZONE)
        pdf.image(io.BytesIO(image), x=code.x, y=code.y, w=code.w, h=code.h)
        top = column.y
        if name:
            top = sheet.line(name, column.x, top, column.w, chinese=True)
        top = sheet.line(f"(01) {link.gtin}", column.x, top, column.w)
        if link.lot is not None:
            top = sheet.line(f"(10) {link.lot}", column.x, top, column.w)
        for ai, word in (
            ("7007", "生产日期" if font else "Prod."),
            ("17", "保质期至" if font else "Exp."),
        ):
            day = _day(link.attributes.get(ai))
            if day and top + SIZE * _PT <= column.bottom:
                top = sheet.line(f"{word} {day}", column.x, top, column.w, chinese=True)
        verify = VERIFY_TEXT if font is not None else ""
        verify_w = 0.0
        if verify:
            sheet.font(True, SIZE)
            verify_w = pdf.get_string_width(verify)
            pdf.text(x=bottom.right - verify_w, y=bottom.y + SIZE * _PT * 0.8, text=verify)
        if link.serial is not None:
            sheet.line(f"(21) {link.serial}", bottom.x, bottom.y, bottom.w - verify_w - 1.5)
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
