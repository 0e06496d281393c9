"""The held-out synthetic benchmark: scenes no training shard draws, asked the recipe's stage-1 and stage-2 questions.

The scenes copy a synthetic source's generator settings with another seed (a scene is a pure function of seed,
shard and index, and the recipe refuses a suite seed that a source uses), so no image is a training image. The
questions come from the same templates as training (no model calls, so the benchmark is fixed before any
training). `held_out` then drops every item a model could have seen: an image id of the training images, or a
question asked in training: the same text with the same options (templated questions recur across scenes; a
text alone is not enough, or the families with fixed phrasings, "Which object is left-most?", would vanish).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from lgt.evaluation.prompts import mcq_prompts
from lgt.evaluation.settings import SyntheticSuite
from lgt.images.sources import read_shard
from lgt.images.stand_in import stand_in
from lgt.images.validate import Limits, build_shard
from lgt.questions.composed import build_questions_composed
from lgt.questions.format import build_questions
from lgt.questions.grounded import build_questions_grounded
from lgt.questions.rows import canon
from schemas.evaluation import BENCHMARK_ARROW


def synthetic_images(suite: SyntheticSuite, recipe: Any) -> pa.Table:
    """The suite's scenes as an `images` table (one shard of the `like` source, drawn with the suite's seed)."""
    like = recipe.source(suite.like)
    src = like.model_copy(
        update={"name": suite.name, "seed": suite.seed, "shards": 1, "images_per_shard": suite.images}
    )
    settings = recipe.stages.images
    result = build_shard(
        read_shard(src, 0), Limits(max_pixels=settings.max_pixels, box_clip_tolerance=settings.box_clip_tolerance)
    )
    if result.quarantine.num_rows:  # the generator's own scenes: a quarantined one is a bug, not bad input
        raise RuntimeError(f"suite {suite.name}: {result.quarantine.num_rows} generated scenes failed validation")
    return result.images


def synthetic_questions(suite: SyntheticSuite, recipe: Any, images: pa.Table) -> list[dict[str, Any]]:
    """Stage-1 templates and stage-2 compositions of the recipe, without its LLM steps, formatted and shuffled."""
    stages = recipe.stages
    stage1 = stages.questions_grounded.model_copy(
        update={
            "llm": stages.questions_grounded.llm.model_copy(update={"enabled": False}),
            "rewrite": stages.questions_grounded.rewrite.model_copy(update={"enabled": False}),
        }
    )
    stage2 = stages.questions_composed.model_copy(
        update={"rewrite": stages.questions_composed.rewrite.model_copy(update={"enabled": False})}
    )
    exhaustive = recipe.source(suite.like).exhaustive
    grounded = build_questions_grounded(images, stage1, recipe.models, suite.name, None, exhaustive)
    composed = build_questions_composed(
        images, grounded.table, stage2, stage1, recipe.models, suite.name, None, exhaustive
    )
    return build_questions(grounded.table, composed.table, stages.questions).table.to_pylist()


def asked(question: str, options: list[str]) -> tuple[str, tuple[str, ...]]:
    """A question as a model reads it: its text and its set of options, compared by `canon` (case, spacing)."""
    return canon(question), tuple(sorted(canon(o) for o in options))


def held_out(
    questions: list[dict[str, Any]], training_image_ids: set[str], training_asked: set[tuple], dropped: Counter
) -> list[dict[str, Any]]:
    """The questions whose image no training question shows and that no training question asks; `dropped` counts
    the others by reason."""
    out = []
    for q in questions:
        if q["image_id"] in training_image_ids:
            dropped["training_image"] += 1
        elif asked(q["question"], q["options"]) in training_asked:
            dropped["asked_in_training"] += 1
        else:
            out.append(q)
    return out


def balanced_sample(questions: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """Up to `limit` questions, tasks taken in turn (each task's questions in a seeded order), so a small benchmark
    still covers every family; the result keeps question-id order."""
    if limit is None or limit >= len(questions):
        return questions
    by_task: dict[str, list[dict]] = defaultdict(list)
    for q in sorted(questions, key=lambda q: q["question_id"]):
        by_task[q["family"]].append(q)
    rng = random.Random(f"lgt-bench:{seed}")
    lanes = []
    for task in sorted(by_task):
        lane = by_task[task]
        rng.shuffle(lane)
        lanes.append(lane)
    picked: list[dict] = []
    while len(picked) < limit:
        for lane in lanes:
            if lane and len(picked) < limit:
                picked.append(lane.pop())
    return sorted(picked, key=lambda q: q["question_id"])


def synthetic_suite(
    suite: SyntheticSuite,
    recipe: Any,
    training_image_ids: set[str],
    training_asked: set[tuple],
    stand_in_keys: list[str] | None,
) -> tuple[pa.Table, Counter]:
    """The suite as BENCHMARK rows, and the count of generated questions dropped as seen in training, by reason."""
    images = synthetic_images(suite, recipe)
    rows = {r["image_id"]: r for r in images.to_pylist()}
    dropped: Counter = Counter()
    kept = held_out(synthetic_questions(suite, recipe, images), training_image_ids, training_asked, dropped)
    out = []
    for i, q in enumerate(balanced_sample(kept, suite.max_questions, suite.seed)):
        system, user = mcq_prompts(q["question"], q["options"], q["reasoning_type"])
        image = rows[q["image_id"]]
        out.append(
            {
                "benchmark": suite.name,
                "task": q["family"],
                "question_id": q["question_id"],
                "source_file": f"synthetic_scenes(like={suite.like}, seed={suite.seed}, images={suite.images})",
                "row": i,
                "question": q["question"],
                "options": q["options"],
                "gold_letter": q["gold_letter"],
                "image": image["image"]["bytes"],
                "image_id": q["image_id"],
                "stand_in": stand_in(image, stand_in_keys),
                "system_prompt": system,
                "user_prompt": user,
            }
        )
    return pa.Table.from_pylist(out, schema=BENCHMARK_ARROW), dropped


def training_asked(questions: pa.Table) -> set[tuple]:
    """Every training question as asked (what `held_out` compares)."""
    cols = questions.select(["question", "options"]).to_pydict()
    return {asked(q, o) for q, o in zip(cols["question"], cols["options"])}
