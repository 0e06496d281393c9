"""The `images` stage's settings (`stages.images`); each source kind's settings live in its module in `sources/`."""

from __future__ import annotations

from pydantic import Field

from lgt.settings import Strict


class ImagesSettings(Strict):
    max_pixels: int = Field(40_000_000, ge=1, description="larger images are quarantined (decompression bombs)")
    box_clip_tolerance: float = Field(
        0.02, ge=0, le=0.5, description="boxes out of the image by at most this fraction of its side are clipped"
    )
    preview_images: int = Field(4, ge=0, le=16)
