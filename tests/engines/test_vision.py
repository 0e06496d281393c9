"""The image path of the transformers engine, through a tiny randomly initialised Qwen2-VL on CPU."""

import io

import pytest
from PIL import Image

from lgt.engines import Call, Engine, ImageInput, Request, Sampling
from lgt.engines.engine import ground
from lgt.engines.transformers_backend import TransformersBackend
from tests.engines.tiny_qwen2vl import build


def png(color, size=(100, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def vlm(smollm2, tmp_path_factory):
    return TransformersBackend(str(build(smollm2, tmp_path_factory.mktemp("qwen2vl"))), batch_size=4)


def ask(image: bytes, **sampling) -> Request:
    content = [
        {"type": "image", "image": ImageInput(image, stand_in="never used")},
        {"type": "text", "text": "Colour?"},
    ]
    return Request(
        messages=[{"role": "user", "content": content}],
        sampling=Sampling(**{"temperature": 0, "max_new_tokens": 8, **sampling}),
    )


def test_vision_model_takes_the_image(vlm):
    assert vlm.vision
    red, blue = png((255, 0, 0)), png((0, 0, 255))
    engine = Engine(vlm)
    r_red, r_blue, r_red2 = engine.generate([ask(red), ask(blue), ask(red)])
    assert r_red.grounding == "image" and all(s.ok for s in r_red.samples)
    assert r_red.texts == r_red2.texts  # greedy, same image: same text
    assert r_red.texts != r_blue.texts  # the pixels reach the model
    # the prompt holds one placeholder per merged 14x14 patch: 100x80 resizes to 112x84 -> 8x6 patches -> 12 tokens
    grounded, _ = ground(ask(red), vlm.vision)
    enc = vlm.processor(
        text=[vlm.render(Call(0, 0, grounded, "key", 0))], images=[Image.open(io.BytesIO(red)).convert("RGB")]
    )
    assert enc["image_grid_thw"].tolist() == [[1, 6, 8]]
    image_token = vlm.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((enc["input_ids"] == image_token).sum()) == 12


def test_image_keys_differ_by_content_and_samples_vary(vlm):
    engine = Engine(vlm)
    a, b = engine.keys([ask(png((1, 2, 3))), ask(png((3, 2, 1)))])
    assert a != b
    (res,) = engine.generate([ask(png((0, 255, 0)), n=2, temperature=1.0, seed=3)])
    assert len(res.samples) == 2 and res.samples[0].text != res.samples[1].text
