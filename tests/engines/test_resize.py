"""Images a vision model sees are scaled to the role's max_pixels, and the exports ship the same pixels."""

import io

import pytest
from PIL import Image

from lgt.engines.engine import ground
from lgt.engines.resize import fit_pixels, fitted_size
from lgt.engines.types import ImageInput, Request


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        ((512, 512), 262_144, (512, 512)),  # exactly at LPT's limit: unchanged
        ((1024, 1024), 262_144, (512, 512)),
        ((640, 480), 262_144, (591, 443)),  # sqrt(262144 / 307200) = 0.9238: 591.2 x 443.4, floored
        ((4000, 100), 262_144, (3238, 80)),  # 0.8095: 3238.1 x 80.9
        ((3, 3), 4, (2, 2)),
    ],
)
def test_fitted_size(size, limit, expected):
    w, h = fitted_size(*size, limit)
    assert (w, h) == expected and w * h <= limit


def test_fit_pixels_keeps_small_images_and_scales_large_ones():
    small = png(100, 80)
    assert fit_pixels(small, 262_144) is small and fit_pixels(small, None) is small
    big = fit_pixels(png(1280, 960), 262_144)
    with Image.open(io.BytesIO(big)) as img:
        assert img.format == "PNG" and img.size == (591, 443)
    assert fit_pixels(png(1280, 960), 262_144) == big  # deterministic: the call cache keys these bytes


def test_ground_scales_images_only_for_vision_models():
    data = png(1024, 768)
    req = Request(
        messages=[
            {
                "role": "user",
                "content": [{"type": "image", "image": ImageInput(data, "a red image")}, {"type": "text", "text": "?"}],
            }
        ]
    )
    seen, how = ground(req, vision=True, max_pixels=262_144)
    img = seen.messages[0]["content"][0]["image"]
    assert how == "image" and img.stand_in == "a red image"
    with Image.open(io.BytesIO(img.data)) as im:
        assert im.width * im.height <= 262_144 and abs(im.width / im.height - 4 / 3) < 0.01
    assert ground(req, vision=True)[0] is req  # no limit: as given
    text, how = ground(req, vision=False, max_pixels=262_144)
    assert how == "caption" and text.messages[0]["content"] == "a red image\n\n?"
