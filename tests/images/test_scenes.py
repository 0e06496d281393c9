"""Synthetic scenes: deterministic, exact boxes, captions that match the scene."""

import io
import random
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageChops

from lgt.images.captions import OPENINGS, caption, left_of, referring_name, relation
from lgt.images.scenes import BACKGROUNDS, SIZES, Scene, SceneObject, generate_scene, render
from lgt.images.sources import SyntheticScenesSource
from lgt.images.sources.synthetic import read_synthetic


def decode(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_same_seed_and_shard_give_identical_bytes_and_caption():
    a, b = generate_scene(7, 2, 5), generate_scene(7, 2, 5)
    assert render(a) == render(b)
    assert caption(a, random.Random(1)) == caption(b, random.Random(1))
    other = generate_scene(7, 3, 5)
    assert render(other) != render(a)


def test_source_is_deterministic_per_seed_and_shard():
    src = SyntheticScenesSource(kind="synthetic_scenes", name="s", shards=3, images_per_shard=4, seed=11)
    first = [(r.image_bytes, r.caption) for r in read_synthetic(src, 1)]
    again = [(r.image_bytes, r.caption) for r in read_synthetic(src, 1)]
    assert first == again
    assert not {b for b, _ in first} & {r.image_bytes for r in read_synthetic(src, 2)}
    with pytest.raises(ValueError, match="shard 3 is not in 0..2"):
        list(read_synthetic(src, 3))


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_boxes_are_exact_pixel_extents(difficulty):
    """Rendered alone, each object's non-background pixels span exactly its box."""
    for index in range(6):
        scene = generate_scene(3, 0, index, difficulty=difficulty)
        blank = decode(render(Scene(scene.width, scene.height, scene.background, scene.floor, [], [], "")))
        for o in scene.objects:
            alone = Scene(scene.width, scene.height, scene.background, scene.floor, [o], [], "")
            diff = ImageChops.difference(decode(render(alone)), blank)
            assert diff.getbbox() == o.bbox, (difficulty, index, o)


def test_object_counts_attributes_and_visibility_follow_the_settings():
    for index in range(40):
        s = generate_scene(1, 0, index, 512, 384, (3, 12), "medium")
        assert 3 <= len(s.objects) <= 12
        for o in s.objects:
            x1, y1, x2, y2 = o.bbox
            assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 384
            assert o.visible_fraction >= 0.75
            assert o.size in SIZES and o.label == o.shape
    easy = [generate_scene(2, 0, i, difficulty="easy") for i in range(20)]
    assert all(not s.occlusions and all(o.visible == o.pixels for o in s.objects) for s in easy)
    assert {o.texture for s in easy for o in s.objects} <= {"plain", "metallic"}
    hard = [generate_scene(2, 0, i, difficulty="hard") for i in range(20)]
    assert any(s.occlusions for s in hard) and all(o.visible_fraction >= 0.5 for s in hard for o in s.objects)


def test_visible_pixels_match_a_recount_from_the_masks():
    """Repaint every mask in z order into a label map and count what each keeps."""
    s = next(s for s in (generate_scene(5, 0, i, difficulty="hard") for i in range(50)) if s.occlusions)
    labels = np.zeros((s.height, s.width), dtype=np.int16)
    for k, o in enumerate(s.objects):
        x1, y1, x2, y2 = o.bbox
        labels[y1:y2, x1:x2][o.mask] = k + 1
    counts = np.bincount(labels.ravel(), minlength=len(s.objects) + 1)
    assert [o.visible for o in s.objects] == [int(c) for c in counts[1:]]
    assert [o.pixels for o in s.objects] == [int(o.mask.sum()) for o in s.objects]


def test_caption_describes_every_object_and_the_count():
    words = "zero one two three four five six seven eight nine ten eleven twelve".split()
    for index in range(30):
        s = generate_scene(4, 1, index)
        text = caption(s, random.Random(index))
        n = len(s.objects)
        assert re.search(rf"\b{words[n]}\b", text, re.IGNORECASE), text
        for o in s.objects:
            assert o.color in text and o.shape in text
        assert s.background in text


def test_caption_relations_and_occlusions_are_true():
    """Every 'the X partly covers the Y' names a real occlusion; every 'It is left of' claim holds."""
    checked = 0
    for index in range(60):
        s = generate_scene(9, 0, index, difficulty="hard")
        names = {referring_name(o, s.objects): o for o in s.objects}
        text = caption(s, random.Random(index))
        occluded = {(a, b) for a, b, _ in s.occlusions}
        for front, back in re.findall(r"The ([a-z -]+?) partly covers the ([a-z -]+?)\.", text):
            assert (names[front].object_id, names[back].object_id) in occluded
            checked += 1
        for back, front in re.findall(r"The ([a-z -]+?) is partly hidden behind the ([a-z -]+?)\.", text):
            assert (names[front].object_id, names[back].object_id) in occluded
            checked += 1
    assert checked > 5


def test_relation_rules_on_hand_built_objects():
    def obj(i, box, color="red", shape="circle", size="small"):
        return SceneObject(str(i), shape, color, "plain", size, box, i, 100)

    a, b, c = obj(0, (0, 0, 10, 10)), obj(1, (10, 0, 20, 10), "blue"), obj(2, (5, 20, 15, 30), "red", "star")
    assert left_of(a, b) and relation(a, b) == "to the left of" and relation(b, a) == "to the right of"
    assert relation(a, c) == "above" and relation(c, b) == "below"
    overlapping = obj(3, (5, 5, 15, 15), "green")
    assert relation(a, overlapping) is None  # overlap on both axes: no claim
    twins = [obj(0, (0, 0, 5, 5)), obj(1, (9, 9, 14, 14))]
    assert referring_name(twins[0], twins) is None  # identical attributes: cannot be named
    assert referring_name(a, [a, b, c]) == "red circle"
    assert referring_name(c, [a, b, c]) == "star"


def test_captions_vary_in_phrasing():
    caps = [caption(generate_scene(0, 0, i), random.Random(i)) for i in range(60)]
    assert len(set(caps)) == 60
    patterns = [re.compile(re.sub(r"\\\{\w+\\\}", ".+?", re.escape(t))) for t in OPENINGS]
    used = Counter(next(k for k, p in enumerate(patterns) if p.match(c)) for c in caps)
    assert len(used) >= 4, used  # several openings in use
    second_words = {c.split(". ")[1].split()[0] for c in caps}
    assert len(second_words) >= 4, second_words  # and several ways to go on


def test_backgrounds_contrast_with_object_colours():
    from lgt.images.scenes import COLORS

    for index in range(40):
        s = generate_scene(6, 0, index)
        bg = np.array(BACKGROUNDS[s.background])
        for o in s.objects:
            assert np.sum((np.array(COLORS[o.color]) - bg) ** 2) > 90**2
