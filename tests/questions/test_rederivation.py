"""Independent re-derivation of every stage-1 and stage-2 gold answer over 1,000 synthetic scenes.

`oracle/checker.py` recomputes each answer from the image's objects,
written from the family definitions, not from the code that made the
questions; the two must agree on every row.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter

import numpy as np
import pytest

from lgt.images.scenes import generate_scene
from lgt.images.sources.synthetic import read_synthetic
from lgt.images.validate import Limits, build_shard
from lgt.questions.composed import build_questions_composed
from lgt.questions.grounded import build_questions_grounded
from lgt.recipe import load_recipe
from oracle.checker import Checker

FAMILY_NAMES = (
    "counting",
    "existence",
    "attribute",
    "relative_position",
    "relative_size",
    "closest",
    "extreme",
    "count_comparison",
)
STAGE2_KINDS = ("chain2", "chain3", "count_sum", "count_difference", "attribute_pair", "conditional")
MIN_PER_FAMILY = 50

# 4 shards x 250 scenes; object counts and difficulty vary by shard
SHARDS = (
    {"objects": (3, 12)},
    {"objects": (3, 12)},
    {"objects": (2, 8), "difficulty": "easy"},
    {"objects": (6, 18), "difficulty": "hard"},
)


def painted_areas(scene) -> dict[str, int]:
    """Each object's visible pixels, found by painting the masks in z order (later objects on top): the area
    the relative-size questions must use, worked out apart from the generator's own bookkeeping."""
    canvas = np.full((scene.height, scene.width), -1, dtype=np.int32)
    for k, o in enumerate(sorted(scene.objects, key=lambda o: o.z)):
        x1, y1, x2, y2 = o.bbox
        canvas[y1:y2, x1:x2][o.mask] = k
    counts = np.bincount(canvas[canvas >= 0].ravel(), minlength=len(scene.objects))
    return {o.object_id: int(counts[k]) for k, o in enumerate(sorted(scene.objects, key=lambda o: o.z))}


@pytest.fixture(scope="module")
def corpus():
    start = time.perf_counter()
    recipe = load_recipe()
    s1 = recipe.stages.questions_grounded
    # counting gets a larger quota: the gold balance keeps about a third of it, and sums and differences are
    # composed from what it keeps
    quota = {"counting": 16}
    families = {f: spec.model_copy(update={"max_per_image": quota.get(f, 6)}) for f, spec in s1.families.items()}
    stage1 = s1.model_copy(update={"llm": s1.llm.model_copy(update={"enabled": False}), "families": families})
    s2 = recipe.stages.questions_composed
    compositions = {k: spec.model_copy(update={"max_per_image": 4}) for k, spec in s2.compositions.items()}
    stage2 = s2.model_copy(
        update={"rewrite": s2.rewrite.model_copy(update={"enabled": False}), "compositions": compositions}
    )
    images, grounded, composed, areas = {}, [], [], {}
    for shard, params in enumerate(SHARDS):
        src = recipe.sources[0].model_copy(
            update={"shards": len(SHARDS), "images_per_shard": 250, "seed": 12345, **params}
        )
        table = build_shard(read_synthetic(src, shard), Limits()).images
        for row in table.select(["image_id", "metadata"]).to_pylist():
            index = json.loads(row["metadata"])["index"]
            scene = generate_scene(src.seed, shard, index, src.width, src.height, tuple(src.objects), src.difficulty)
            areas[row["image_id"]] = painted_areas(scene)
        g = build_questions_grounded(table, stage1, recipe.models, "synth", None).table
        c = build_questions_composed(table, g, stage2, stage1, recipe.models, "synth", None).table
        images.update({r["image_id"]: {**r, "_areas": areas[r["image_id"]]} for r in table.drop(["image"]).to_pylist()})
        grounded += g.to_pylist()
        composed += c.to_pylist()
    checker = Checker(
        vocab={k: list(a.values) for k, a in stage1.attributes.items()},
        margins=stage1.margins.model_dump(),
        nouns={k: a.noun for k, a in stage1.attributes.items()},
    )
    print(
        f"\nbuilt {len(images)} scenes, {len(grounded)} stage-1 and {len(composed)} stage-2 rows "
        f"in {time.perf_counter() - start:.1f}s"
    )
    return {
        "images": images,
        "grounded": grounded,
        "composed": composed,
        "checker": checker,
        "stage1_by_id": {r["question_id"]: r for r in grounded},
    }


def _check_all(corpus, rows):
    checker, images, by_id = corpus["checker"], corpus["images"], corpus["stage1_by_id"]
    bad = []
    for r in rows:
        problems = checker.check(r, images[r["image_id"]], by_id)
        if problems:
            bad.append((r, problems))
    return bad


def _describe(bad) -> str:
    lines = []
    for r, problems in bad[:5]:
        lines.append(
            f"- image {r['image_id']} {r['family']} {r['question']!r} answer={r['answer']!r} "
            f"distractors={r['distractors']} spec={r['spec']}: {problems}"
        )
    return f"{len(bad)} rows disagree with the independent checker; first ones:\n" + "\n".join(lines)


def test_every_gold_answer_rederived(corpus):
    start = time.perf_counter()
    assert len(corpus["images"]) == 1000
    grounded, composed = corpus["grounded"], corpus["composed"]
    families = Counter(r["family"] for r in grounded)
    kinds = Counter(json.loads(r["spec"])["kind"] for r in composed)
    print("stage 1:", dict(families.most_common()))
    print("stage 2:", dict(kinds.most_common()))
    assert all(r["stage"] == 1 and r["origin"] == "template" for r in grounded)
    assert all(r["stage"] == 2 for r in composed)
    for f in FAMILY_NAMES:
        assert families[f] >= MIN_PER_FAMILY, f"stage-1 family {f} appears only {families[f]} times"
    for k in STAGE2_KINDS:
        assert kinds[k] >= MIN_PER_FAMILY, f"stage-2 kind {k} appears only {kinds[k]} times"
    bad = _check_all(corpus, grounded + composed)
    print(f"checked {len(grounded) + len(composed)} rows in {time.perf_counter() - start:.1f}s")
    assert not bad, _describe(bad)


def _first(rows, pred):
    return next(r for r in rows if pred(r))


def _kind(r) -> str:
    return json.loads(r["spec"]).get("kind", "")


def test_checker_flags_corrupted_rows(corpus):
    """The checker can fail: each corruption of a correct row is caught."""
    grounded, composed = corpus["grounded"], corpus["composed"]

    def swapped(r):  # the answer swapped with a distractor
        r = copy.deepcopy(r)
        r["answer"], r["distractors"][0] = r["distractors"][0], r["answer"]
        return r

    def count_bumped(r):
        r = copy.deepcopy(r)
        n = str(int(r["answer"]) + 1)
        r["answer"], r["distractors"] = n, [d if d != n else str(int(n) + 5) for d in r["distractors"]]
        return r

    def with_spec(r, **changes):
        r = copy.deepcopy(r)
        r["spec"] = json.dumps({**json.loads(r["spec"]), **changes})
        return r

    def duplicated_option(r):
        r = copy.deepcopy(r)
        r["distractors"][1] = r["answer"].upper()
        return r

    def lost_parent(r):
        r = copy.deepcopy(r)
        r["parents"] = r["parents"][:-1] + ["0" * 32]
        return r

    def more_hops(r):
        r = copy.deepcopy(r)
        r["hops"] += 1
        return r

    by_family = {f: _first(grounded, lambda r, f=f: r["family"] == f) for f in FAMILY_NAMES}
    by_kind = {k: _first(composed, lambda r, k=k: _kind(r) == k) for k in STAGE2_KINDS}
    rel = by_family["relative_position"]
    flipped_relation = {"left": "right", "right": "left", "above": "below", "below": "above"}
    extreme_dir = json.loads(by_family["extreme"]["spec"])["direction"]
    opposite_dir = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[extreme_dir]
    corrupted = [swapped(r) for r in by_family.values()]
    corrupted += [swapped(r) for r in by_kind.values()]
    corrupted += [
        count_bumped(by_family["counting"]),
        count_bumped(by_kind["count_sum"]),
        count_bumped(by_kind["count_difference"]),
        count_bumped(by_kind["conditional"]),
        # the relation's words swapped: same answer text, but the referents reversed
        with_spec(
            rel,
            a=json.loads(rel["spec"])["b"],
            b=json.loads(rel["spec"])["a"],
            relation=flipped_relation[json.loads(rel["spec"])["relation"]],
        ),
        with_spec(by_family["extreme"], direction=opposite_dir),
        with_spec(
            by_kind["conditional"], stated=flipped_relation[json.loads(by_kind["conditional"]["spec"])["stated"]]
        ),
        with_spec(
            by_family["relative_size"],
            which="smallest" if json.loads(by_family["relative_size"]["spec"])["which"] == "largest" else "largest",
        ),
        duplicated_option(by_family["attribute"]),
        lost_parent(by_kind["chain3"]),
        more_hops(by_kind["attribute_pair"]),
    ]
    checker, images, by_id = corpus["checker"], corpus["images"], corpus["stage1_by_id"]
    # the originals pass, so what the checker flags is the corruption
    for r in list(by_family.values()) + list(by_kind.values()):
        assert checker.check(r, images[r["image_id"]], by_id) == [], r
    missed = [r for r in corrupted if not checker.check(r, images[r["image_id"]], by_id)]
    assert not missed, f"{len(missed)} corrupted rows passed the checker: {missed[:2]}"
