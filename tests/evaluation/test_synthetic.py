"""The held-out synthetic benchmark: disjoint from training by image and by question, fixed by its seed."""

import textwrap
from collections import Counter

import pytest

from lgt.evaluation.prompts import mcq_prompts
from lgt.evaluation.synthetic import asked, balanced_sample, held_out, synthetic_suite, training_asked
from lgt.images.sources import read_shard
from lgt.images.validate import build_shard
from lgt.questions.format import build_questions
from lgt.questions.grounded import build_questions_grounded
from lgt.recipe import RecipeError, load_recipe
from schemas import BenchmarkSchema

RECIPE = """
name: held
sources: [{{name: s, kind: synthetic_scenes, shards: 2, images_per_shard: 8, objects: [3, 8]}}]
models:
  vlm: {{backend: transformers, model: base_model}}
  reasoner: {{backend: transformers, model: base_model}}
  verifier: {{backend: transformers, model: base_model}}
  small_solver: {{backend: transformers, model: base_model}}
stages:
  questions_grounded: {{llm: {{enabled: true}}, rewrite: {{enabled: true}}}}
  questions_composed: {{rewrite: {{enabled: true}}}}
  benchmark_suites:
    suites: [{{name: bench, kind: synthetic, like: {like}, seed: {seed}, images: 12, max_questions: {limit}}}]
"""


def recipe(tmp_path, like="s", seed=5, limit=40):
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent(RECIPE.format(like=like, seed=seed, limit=limit)))
    return load_recipe(p)


def training(r):
    """The training shards' images and (template) questions, as the shard assets build them."""
    images, questions = set(), []
    stage1 = r.stages.questions_grounded.model_copy(
        update={
            "llm": r.stages.questions_grounded.llm.model_copy(update={"enabled": False}),
            "rewrite": r.stages.questions_grounded.rewrite.model_copy(update={"enabled": False}),
        }
    )
    for shard in range(2):
        table = build_shard(read_shard(r.source("s"), shard)).images
        images |= set(table.column("image_id").to_pylist())
        grounded = build_questions_grounded(table, stage1, r.models, "s", None)
        questions.append(build_questions(grounded.table, grounded.table.slice(0, 0), r.stages.questions).table)
    return images, questions


def test_the_suite_is_disjoint_from_training_by_image_and_by_question(tmp_path):
    r = recipe(tmp_path)
    train_images, train_questions = training(r)
    asked_in_training = set().union(*(training_asked(q) for q in train_questions))
    suite = r.stages.benchmark_suites.suites[0]
    table, dropped = synthetic_suite(suite, r, train_images, asked_in_training, ["color", "texture", "size"])
    BenchmarkSchema.validate(table.to_pandas())
    rows = table.to_pylist()
    assert len(rows) == 40 and {r_["benchmark"] for r_ in rows} == {"bench"}
    assert not {r_["image_id"] for r_ in rows} & train_images
    assert not any(asked(r_["question"], r_["options"]) in asked_in_training for r_ in rows)
    # templated questions recur across scenes: some generated ones were asked in training and are gone
    assert dropped["asked_in_training"] > 0 and dropped["training_image"] == 0
    # the LLM steps of the recipe are off for the benchmark: every question comes from the templates
    tasks = Counter(r_["task"] for r_ in rows)
    assert len(tasks) == 8 and set(tasks.values()) == {5} and {"counting", "combine"} <= set(tasks)  # 8 tasks in turn
    for r_ in rows:  # asked as every model is: the fixed style of lgt/evaluation/prompts.py
        system, user = mcq_prompts(r_["question"], r_["options"], system_type(r_["system_prompt"]))
        assert (r_["system_prompt"], r_["user_prompt"]) == (system, user)
        assert r_["stand_in"] and r_["image"][:8] == b"\x89PNG\r\n\x1a\n"
    # fixed by its seed: the same rows again
    again, _ = synthetic_suite(suite, r, train_images, asked_in_training, ["color", "texture", "size"])
    assert again.equals(table)


def system_type(system_prompt: str) -> str:
    return system_prompt.split("This is a ", 1)[1].split(" question about", 1)[0]


def test_held_out_counts_what_it_drops():
    questions = [
        {"image_id": "a", "question": "How many cubes?", "options": ["1", "2", "3", "4"]},
        {"image_id": "b", "question": "How many  CUBES?", "options": ["4", "3", "2", "1"]},  # asked in training
        {"image_id": "b", "question": "How many cubes?", "options": ["0", "1", "2", "3"]},  # other options: kept
        {"image_id": "t", "question": "What colour?", "options": ["red", "blue"]},  # a training image
    ]
    dropped = Counter()
    kept = held_out(questions, {"t"}, {asked("how many cubes?", ["1", "2", "3", "4"])}, dropped)
    assert kept == [questions[2]]
    assert dropped == Counter({"asked_in_training": 2, "training_image": 1})


def test_balanced_sample_takes_tasks_in_turn():
    qs = [{"question_id": f"{f}{i:02d}", "family": f} for f, n in (("a", 30), ("b", 5), ("c", 2)) for i in range(n)]
    picked = balanced_sample(qs, 12, seed=0)
    assert Counter(q["family"] for q in picked) == Counter({"a": 5, "b": 5, "c": 2})
    assert picked == sorted(picked, key=lambda q: q["question_id"])
    assert balanced_sample(qs, 12, seed=0) == picked and balanced_sample(qs, 100, seed=0) == qs


def test_the_recipe_refuses_a_suite_that_is_not_held_out(tmp_path):
    with pytest.raises(RecipeError, match="seed 0 is a training source's seed"):
        recipe(tmp_path, seed=0)
    with pytest.raises(RecipeError, match="like='nope' is not a synthetic source"):
        recipe(tmp_path, like="nope")
