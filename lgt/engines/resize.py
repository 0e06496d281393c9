"""One resize for what a vision model sees and what the student trains on.

LPT generates and trains at no more than 512x512 pixels (Qwen2.5-VL `max_pixels` 262,144). Images above a role's
`max_pixels` are scaled down, aspect kept, and re-encoded as PNG (lossless, deterministic), so the call cache keys
what the model saw, and the exports can ship the same pixels.
"""

from __future__ import annotations

import functools
import io
import math

from PIL import Image


def fitted_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest (w, h) with the same aspect (to the pixel) and w * h <= max_pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    while w * h > max_pixels:  # floor rounding can leave one row too many
        w, h = (w - 1, h) if w >= h else (w, h - 1)
    return w, h


@functools.lru_cache(maxsize=16)  # consecutive requests often show the same image (several questions about it)
def fit_pixels(data: bytes, max_pixels: int | None) -> bytes:
    """The image bytes as given when within `max_pixels` (or no limit), else a scaled-down PNG."""
    if max_pixels is None:
        return data
    with Image.open(io.BytesIO(data)) as img:
        size = fitted_size(img.width, img.height, max_pixels)
        if size == (img.width, img.height):
            return data
        out = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()
