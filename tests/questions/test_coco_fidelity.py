"""Gold answers on a COCO-format source with real annotations' flaws agree with what the images show.

The fixture (`coco_fixture.py`) writes crowd regions, group boxes, missing annotations and tiny objects; the
independent checker re-derives every stage-1 and stage-2 gold from the drawn objects (the truth), not from the
annotations. With the real-photo rules turned off (annotations taken as exhaustive, no group-boxed labels, no
minimum area) the same pipeline produces golds the truth contradicts: the rules are what make them hold.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lgt.images.sources.coco import CocoSource, read_coco
from lgt.images.validate import Limits, build_shard
from lgt.questions.composed import build_questions_composed
from lgt.questions.grounded import build_questions_grounded
from lgt.recipe import load_recipe
from oracle.checker import Checker
from oracle.coco_fixture import FLAWS, GROUP_BOXED, write_coco_fixture


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    fx = write_coco_fixture(tmp_path_factory.mktemp("coco"))
    src = CocoSource(kind="coco", name="coco_fx", images=fx.images, instances=fx.instances, captions=fx.captions)
    shard = build_shard(read_coco(src, 0, index_root=tmp_path_factory.mktemp("index")), Limits())
    assert shard.quarantine.num_rows == 0, shard.reasons()
    return fx, src, shard.images


def _stages(**grounded):
    recipe = load_recipe()
    s1 = recipe.stages.questions_grounded
    s1 = s1.model_copy(update={"llm": s1.llm.model_copy(update={"enabled": False}), "attributes": {}, **grounded})
    s2 = recipe.stages.questions_composed
    s2 = s2.model_copy(update={"rewrite": s2.rewrite.model_copy(update={"enabled": False})})
    return recipe, s1, s2


def _run(images, exhaustive: bool, **grounded):
    recipe, s1, s2 = _stages(**grounded)
    g = build_questions_grounded(images, s1, recipe.models, "coco_fx", None, exhaustive)
    c = build_questions_composed(images, g.table, s2, s1, recipe.models, "coco_fx", None, exhaustive)
    return g, c, s1


def _disagreements(fx, images, g, c, s1):
    truth_by_id = {}
    for r in images.select(["image_id", "metadata"]).to_pylist():
        name = json.loads(r["metadata"])["file_name"]
        truth_by_id[r["image_id"]] = {"image_id": r["image_id"], **fx.truth[name]}
    checker = Checker(vocab={}, margins=s1.margins.model_dump())
    grounded, composed = g.table.to_pylist(), c.table.to_pylist()
    by_id = {r["question_id"]: r for r in grounded}
    bad = []
    for r in grounded + composed:
        problems = checker.check(r, truth_by_id[r["image_id"]], by_id)
        if problems:
            bad.append((r["family"], r["question"], r["answer"], problems))
    return bad, grounded + composed


def test_the_fixture_has_every_flaw(coco):
    fx, _, images = coco
    assert images.num_rows == 80
    assert all(fx.flaws[f] >= 5 for f in FLAWS), fx.flaws
    crowd = [o for objs in images.column("objects").to_pylist() for o in objs if o["crowd"]]
    assert len(crowd) == fx.flaws["crowd_region"]
    assert all(o["area_from"] == "segmentation" for objs in images.column("objects").to_pylist() for o in objs)


def test_every_gold_agrees_with_what_the_image_shows(coco):
    fx, _, images = coco
    g, c, s1 = _run(images, exhaustive=False)
    bad, rows = _disagreements(fx, images, g, c, s1)
    families = Counter(r["family"] for r in rows)
    print("\nyield:", dict(families.most_common()), "skips:", dict(+g.rejects))
    assert not bad, bad[:5]
    assert len(rows) >= 300 and len(families) >= 6  # the rules cost yield, not everything
    for reason in ("crowd_region", "not_countable", "tiny_object", "caption_disagrees", "no_attributes"):
        assert g.rejects[f"skip/{reason}"] > 0, reason
    # nothing names or counts a tiny figure or a group-boxed label
    for r in rows:
        if r["family"] in ("counting", "count_comparison"):
            spec = json.loads(r["spec"])
            labels = [spec["group"]["label"]] if "group" in spec else [spec["a"]["label"], spec["b"]["label"]]
            assert not set(labels) & set(GROUP_BOXED), r["question"]


def test_without_the_rules_the_annotations_mislead(coco):
    fx, _, images = coco
    g, c, s1 = _run(images, exhaustive=True, uncountable_labels=[], min_object_area=0.0)
    bad, _ = _disagreements(fx, images, g, c, s1)
    kinds = Counter(f for f, *_ in bad)
    print("\ndisagreements without the rules:", dict(kinds))
    assert len(bad) >= 20 and kinds["counting"] > 0, kinds
