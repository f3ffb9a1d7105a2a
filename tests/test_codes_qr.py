"""QR images of issued codes decode, with real decoders, to exactly the issued URI: 1,000
random codes of a batch through zxing-cpp's decoder and, when libzbar is installed (the
test setup installs it), through zbar as well, an implementation that shares no code
with the encoder. Also the SVG, ZIP and PDF outputs, and the pure-Python baseline."""

from __future__ import annotations

import ctypes.util
import io
import random
import re
import shutil
import subprocess
import zipfile
import zlib

import pytest
import zxingcpp
from PIL import Image

from api.codes import render
from api.codes.sheets import label_pdf, qr_zip
from traceability.codes.batch import new_batch
from traceability.codes.digital_link import build
from traceability.codes.sealing import ResolverKey

HOST = "id.parktrace.example"
SEED = 20261122


def zbar_available() -> bool:
    return ctypes.util.find_library("zbar") is not None


@pytest.fixture(scope="module")
def issued() -> list[str]:
    """1,000 random codes of a 100,000-code mask batch (seeded)."""
    rng = random.Random(SEED)
    link = build("6907890000346", "KN95-261112-L3", attributes={"11": "261112", "17": "291111"})
    keys = [ResolverKey.from_seed(b"qr tests").public]
    batch, key = new_batch(
        link, 100_000, keys, HOST, batch_key=rng.randbytes(32), batch_id=rng.randbytes(16)
    )
    serials = batch.serial_key(key)
    picks = rng.sample(range(batch.count), 1000)
    return [batch.code(serials.serial(i)).uri(HOST) for i in picks]


def decode_zxing(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_1000_issued_codes_decode_to_their_uri(issued: list[str]) -> None:
    assert len(set(issued)) == 1000
    for uri in issued:
        assert decode_zxing(render.png(uri)) == [uri]


@pytest.mark.skipif(not zbar_available(), reason="libzbar0 is not installed (see .ci/run)")
def test_1000_issued_codes_decode_with_zbar(issued: list[str]) -> None:
    from pyzbar import pyzbar

    for uri in issued:
        image = Image.open(io.BytesIO(render.png(uri, scale=4)))
        found = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
        assert [f.data.decode("utf-8") for f in found] == [uri]


def test_error_correction_level_is_m_by_default(issued: list[str]) -> None:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(render.png(issued[0]))))
    assert found[0].ec_level == "M"
    high = zxingcpp.read_barcodes(Image.open(io.BytesIO(render.png(issued[0], ec="H"))))
    assert high[0].ec_level == "H" and high[0].text == issued[0]


def test_pure_python_baseline_encodes_the_same_content(issued: list[str]) -> None:
    for uri in issued[:20]:
        assert decode_zxing(render.baseline_png(uri)) == [uri]


def test_png_geometry(issued: list[str]) -> None:
    image = Image.open(io.BytesIO(render.png(issued[0], scale=5)))
    size = render.matrix(issued[0]).size
    assert image.size == ((size + 8) * 5,) * 2
    assert image.mode == "1"
    assert image.getpixel((0, 0)) == 255  # quiet zone
    assert image.getpixel((4 * 5, 4 * 5)) == 0  # finder pattern corner


def test_svg_draws_exactly_the_dark_modules(issued: list[str]) -> None:
    uri = issued[1]
    matrix = render.matrix(uri)
    svg = render.svg(uri)
    path = svg.split(' d="', 1)[1].split('"', 1)[0]
    dark = set()
    for run in path.split("z")[:-1]:
        x, y = (int(v) for v in run[1:].split("h")[0].split(" "))
        width = int(run.split("h")[1].split("v")[0])
        dark |= {(x - 4 + i, y - 4) for i in range(width)}
    expected = {(x, y) for y in range(matrix.size) for x in range(matrix.size) if matrix.dark(x, y)}
    assert dark == expected
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert f"<title>{uri.replace('&', '&amp;')}</title>" in svg


def test_zip_of_a_batch(issued: list[str]) -> None:
    data = qr_zip(((f"{i:03d}", uri) for i, uri in enumerate(issued[:30])), formats=("png", "svg"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert len([n for n in names if n.endswith(".png")]) == 30
        assert len([n for n in names if n.endswith(".svg")]) == 30
        assert decode_zxing(archive.read("png/007.png")) == [issued[7]]
        rows = archive.read("codes.csv").decode().splitlines()
        assert rows[0] == "file,uri" and rows[8] == f"007,{issued[7]}"


def test_pdf_label_sheet(issued: list[str]) -> None:
    from traceability.codes.digital_link import parse_uri

    codes = [(parse_uri(uri), uri) for uri in issued[:45]]
    pdf = label_pdf(codes, title="KN95 lot KN95-261112-L3")
    assert pdf.startswith(b"%PDF-")
    assert b"/Count 2\n" in pdf  # 40 labels a page
    text = b"".join(
        zlib.decompress(stream)
        for stream in re.findall(rb"stream\n(.*?)\nendstream", pdf, flags=re.S)
        if stream.startswith(b"x")
    )
    for link, _ in codes:
        assert f"\\(21\\) {link.serial}".encode() in text
        assert f"\\(10\\) {link.lot}".encode() in text
    assert text.count(b" Do") == 45  # one QR image a label


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript is not installed")
def test_printed_label_sheet_scans(issued: list[str], tmp_path) -> None:
    """Print the first sheet at 300 dpi (Ghostscript) and scan every label on it."""
    from traceability.codes.digital_link import parse_uri

    pdf = tmp_path / "labels.pdf"
    pdf.write_bytes(label_pdf([(parse_uri(uri), uri) for uri in issued[:40]]))
    page = tmp_path / "page.png"
    subprocess.run(
        ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pnggray", "-r300",
         "-dFirstPage=1", "-dLastPage=1", f"-sOutputFile={page}", str(pdf)],
        check=True,
        timeout=60,
    )  # fmt: skip
    found = zxingcpp.read_barcodes(Image.open(page), formats=zxingcpp.BarcodeFormat.QRCode)
    assert sorted(r.text for r in found) == sorted(issued[:40])
