"""Pure: a picture made ready for a vision model, and which of Telegram's sizes to fetch.

The picture is turned upright (EXIF orientation), downscaled so its longer side is at most the
configured size, and re-encoded as JPEG, which also drops its metadata (a photo sent as a file
may carry its GPS position). CPU-bound (Pillow): callers run `prepare` in a worker thread.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

JPEG_QUALITY = 85
# Beyond this a "picture" is a decompression bomb, not a photo.
MAX_PIXELS = 60_000_000


class UnreadableImage(ValueError):
    """The bytes are not a picture Pillow can read (or an absurdly large one)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    data_url: str
    width: int
    height: int


def choose_size(sizes: Sequence[tuple[int, int]], max_side: int) -> int:
    """The index of the largest (width, height) whose longer side fits `max_side`; when none
    fits, the smallest one (it is downscaled after download)."""
    if not sizes:
        raise ValueError("no sizes to choose from")
    fitting = [i for i, (w, h) in enumerate(sizes) if max(w, h) <= max_side]
    if fitting:
        return max(fitting, key=lambda i: sizes[i][0] * sizes[i][1])
    return min(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])


def prepare(data: bytes, max_side: int) -> Prepared:
    """A JPEG data URL of the picture, its longer side at most `max_side` pixels."""
    try:
        with Image.open(BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise UnreadableImage(f"{opened.width}x{opened.height} pixels is too large")
            # JPEG decoding can skip detail it would throw away anyway (a power-of-two reduction).
            opened.draft("RGB", (max_side, max_side))
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            image = _rgb(image)
            out = BytesIO()
            image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise UnreadableImage(type(exc).__name__) from exc
    encoded = base64.b64encode(out.getvalue()).decode("ascii")
    return Prepared(f"data:image/jpeg;base64,{encoded}", image.width, image.height)


def _rgb(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white rather than black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
