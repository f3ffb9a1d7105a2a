"""The CJK font of the audit report's PDF: Noto Sans SC, installed from PyPI with the
`justmytype-intl-cjk` package (SIL Open Font License), never a font of the system.

The package ships the variable font (17 MB, every weight). A report uses a few hundred
characters, so they are cut out first and the two weights the PDF needs (400, 700) are
made from that subset, which takes a fraction of a second; fpdf2 then embeds them."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.varLib import instancer

FAMILY = "NotoSansSC"
WEIGHTS = {"": 400, "B": 700}
#: Always in the subset: what the renderer itself may draw besides the report's text.
_ALWAYS = "0123456789abcdefABCDEF-–—:：，。、（）()/·•… %+=#@_.,;'\"?!<>[]{}|\\*&^$~`"


def font_file() -> Path:
    return Path(str(files("justmytype_intl_cjk") / "fonts/ofl/notosanssc/NotoSansSC[wght].ttf"))


@contextmanager
def cjk_fonts(text: str) -> Iterator[dict[str, Path]]:
    """Static TTF files (style -> path, for `FPDF.add_font`) covering `text`, removed
    when the block ends."""
    font = TTFont(font_file())
    options = subset.Options()
    options.notdef_outline = True
    options.name_IDs = ["*"]
    cutter = subset.Subsetter(options)
    cutter.populate(text=text + _ALWAYS)
    cutter.subset(font)
    whole = io.BytesIO()
    font.save(whole)
    with tempfile.TemporaryDirectory(prefix="parktrace-font-") as directory:
        paths: dict[str, Path] = {}
        for style, weight in WEIGHTS.items():
            static = instancer.instantiateVariableFont(
                TTFont(io.BytesIO(whole.getvalue())), {"wght": weight}
            )
            path = Path(directory) / f"{FAMILY}-{weight}.ttf"
            static.save(path)
            paths[style] = path
        yield paths
