"""A consumer's photo, made fit for the ledger: decoded, turned upright, shrunk and saved
again as a small JPEG (`traceability.codes.observations.MAX_PHOTO_BYTES`). Saving anew
keeps no metadata: a phone's EXIF (its GPS position, its serial number) never reaches
the chain. Pillow reads the image; its header is checked before any pixel is decoded,
so a small file that would decode to gigapixels is refused cheaply."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from traceability.codes.observations import MAX_PHOTO_BYTES

from ..errors import ApiError

#: Most pixels a photo may declare (a 48-megapixel phone camera's, and some margin).
MAX_PIXELS = 64_000_000
#: (longest side, JPEG quality) tried in turn until the photo fits.
_STEPS = ((960, 72), (800, 62), (640, 55), (480, 45), (320, 35))


def reduce_photo(data: bytes) -> bytes:
    """`data` (any image Pillow reads) as a JPEG of at most MAX_PHOTO_BYTES."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ApiError("too_large", f"photo: {width}×{height} pixels is too many")
            image.draft("RGB", (_STEPS[0][0] * 2, _STEPS[0][0] * 2))
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError("invalid_request", "photo: not an image this node can read") from exc
    for side, quality in _STEPS:
        copy = upright.copy()
        copy.thumbnail((side, side))
        out = io.BytesIO()
        copy.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= MAX_PHOTO_BYTES:
            return out.getvalue()
    raise ApiError("too_large", "photo: cannot be made small enough for the ledger")
