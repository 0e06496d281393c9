"""Composition on a hand-built scene, the rewrite checks, LPT formatting, dedup and recipe validation."""

import json
import random
import textwrap
from collections import Counter

import pyarrow as pa
import pytest

from lgt.questions.compose import compose
from lgt.questions.families import Draft, Obj, Rules, View
from lgt.questions.format import build_questions, format_question
from lgt.questions.rewrite import leaks_answer, parse_rewrite
from lgt.questions.rows import item_row, items_table
from lgt.questions.settings import QuestionsSettings
from lgt.recipe import RecipeError, load_recipe
from schemas import QuestionsSchema

RULES = Rules(attributes={"color": ("colour", ["red", "orange", "yellow", "green", "blue", "purple"])})


def hand_scene():
    objs = [
        Obj("o0", "square", (0, 200, 40, 240), {"color": "red"}),  # left-most
        Obj("o1", "circle", (60, 200, 100, 240), {"color": "blue"}),  # closest to o0 (60 px)
        Obj("o2", "star", (200, 0, 240, 40), {"color": "green"}),
        Obj("o3", "ring", (300, 450, 340, 490), {"color": "yellow"}),
        Obj("o4", "cross", (450, 100, 490, 140), {"color": "purple"}),
    ]
    return View("a" * 32, 500, 500, objs, RULES)


def stage1_item(qid, family, spec, answer="x", distractors=("p", "q", "r"), grounding=("o0",)):
    return {
        "question_id": qid,
        "family": family,
        "spec": spec,
        "answer": answer,
        "distractors": list(distractors),
        "grounding_ids": list(grounding),
    }


def test_chain_gold_comes_from_the_metadata_and_wrong_hops_feed_the_distractors():
    v = hand_scene()
    extreme = stage1_item(
        "e" * 32, "extreme", {"direction": "left", "object_id": "o0", "option_ids": ["o2", "o3", "o4"]}
    )
    closest = stage1_item(
        "c" * 32,
        "closest",
        {
            "which": "closest",
            "anchor_id": "o0",
            "anchor": "square",
            "object_id": "o1",
            "option_ids": ["o2", "o3", "o4"],
        },
    )
    attr = stage1_item(
        "t" * 32,
        "attribute",
        {"object_id": "o1", "object": "circle", "key": "color"},
        "blue",
        ["red", "green", "yellow"],
    )
    drafts = compose(v, [extreme, closest, attr], {"chain": 10}, seed=0)
    three = next(d for d in drafts if d.spec["kind"] == "chain3")
    assert three.question.count("the object closest to the object furthest to the left") == 1
    assert three.answer == "blue" and three.parents == ["e" * 32, "c" * 32, "t" * 32] and three.hops == 3
    two = next(d for d in drafts if d.spec["kind"] == "chain2" and d.parents[0] == "c" * 32)
    assert two.answer == "blue" and "closest to the square" in two.question
    # hop 1's wrong options are the star, ring and cross: their colours are the distractors
    assert set(two.distractors) == {"green", "yellow", "purple"}


def test_combine_and_conditional_answers():
    v = hand_scene()
    count = lambda q, label, n: stage1_item(  # noqa: E731
        q * 32,
        "counting",
        {
            "group": {"attributes": {}, "label": label},
            "things": label + "s",
        },
        str(n),
    )
    items = [
        count("a", "square", 1),
        count("b", "circle", 1),
        stage1_item(
            "p" * 32, "relative_position", {"a_id": "o0", "a": "square", "b_id": "o4", "b": "cross", "relation": "left"}
        ),
    ]
    extra = Obj("o5", "square", (150, 400, 190, 440), {"color": "orange"})
    v = View(v.image_id, 500, 500, v.objects + [extra], RULES)
    drafts = compose(v, items, {"combine": 10, "conditional": 10}, seed=1)
    total = next(d for d in drafts if d.spec["kind"] == "count_sum")
    assert total.answer == "3" and {"2", "1"} <= set(total.distractors)  # each hop's own count is a distractor
    diff = next(d for d in drafts if d.spec["kind"] == "count_difference")
    assert (
        diff.answer == "1"
        and diff.spec["a"]["label"] == "square"
        and diff.question.index("square") < diff.question.index("circle")
    )
    cond = next(d for d in drafts if d.family == "conditional")
    truth = cond.spec["stated"] == "left"
    assert cond.answer == ("2" if truth else "1")
    assert ("1" if truth else "2") in cond.distractors  # the other branch is a distractor


def test_rewrite_parsing_and_answer_leaks():
    assert parse_rewrite("<question> Which  colour is it? </question>") == "Which colour is it?"
    assert parse_rewrite("<question>Which colour is it?") is None
    assert parse_rewrite("<question>Which colour is it?", finished=True) == "Which colour is it?"
    assert leaks_answer("Is the blue circle left of it?", "blue") and not leaks_answer("Is it bluish?", "blue")
    assert leaks_answer("There are 3 of them; how many?", "3") and not leaks_answer("How many of 13?", "3")


def _items(n, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answer = f"answer {i}"
        d = Draft("counting", f"Question {i}?", answer, [f"wrong {i}.{k}" for k in range(3)], ["o1"])
        rows.append(item_row(d, f"{rng.getrandbits(128):032x}", "s", stage=1, origin="template", prompt_version="t@1"))
    return rows


def test_shuffle_is_deterministic_per_seed_and_the_gold_letter_follows_it():
    items = _items(3000)
    stage = QuestionsSettings(seed=5)
    a = [format_question(it, stage) for it in items]
    assert a == [format_question(it, stage) for it in items]
    for it, q in zip(items, a):
        assert q["options"]["ABCD".index(q["gold_letter"])] == it["answer"] and sorted(q["options"]) == sorted(
            [it["answer"], *it["distractors"]]
        )
    letters = Counter(q["gold_letter"] for q in a)
    assert all(650 <= letters[c] <= 850 for c in "ABCD"), letters  # uniform: 750 each
    formats = Counter(q["answer_format"] for q in a)
    assert all(880 <= formats[f] <= 1120 for f in ("(X)", "X.", "text")), formats  # a third each
    styles = Counter(q["option_style"] for q in a)
    assert all(1350 <= styles[s] <= 1650 for s in ("(A) text", "A. text")), styles
    other = [format_question(it, QuestionsSettings(seed=6)) for it in items]
    assert sum(x["options"] != y["options"] for x, y in zip(a, other)) > 2000  # the recipe seed changes the shuffle
    q = a[0]
    assert "<think>" in q["system_prompt"] and "<answer>" in q["system_prompt"]
    assert q["reasoning_type"] in q["system_prompt"]
    marker = f"({q['gold_letter']}) " if q["option_style"] == "(A) text" else f"{q['gold_letter']}. "
    assert marker + q["gold_text"] in q["user_prompt"]


def test_questions_dedupes_across_stages_and_passes_its_schema():
    items = _items(5)
    stage2 = [
        {
            **items[0],
            "stage": 2,
            "family": "chain",
            "origin": "composed",
            "hops": 2,
            "parents": ["x" * 32, "y" * 32],
            "question": items[0]["question"].upper(),
        }
    ]
    result = build_questions(items_table(items), items_table(stage2), QuestionsSettings())
    assert result.table.num_rows == 5 and result.rejects["duplicate"] == 1
    QuestionsSchema.validate(result.table.to_pandas(), lazy=True)
    broken = result.table.to_pylist()
    broken[0]["gold_letter"] = "ABCD"[("ABCD".index(broken[0]["gold_letter"]) + 1) % 4]
    with pytest.raises(Exception, match="gold_is_the_lettered_option"):
        QuestionsSchema.validate(pa.Table.from_pylist(broken, schema=result.table.schema).to_pandas(), lazy=True)


@pytest.mark.parametrize(
    "families, message",
    [
        ('{counting: {phrasings: ["How many are there?"]}}', r"counting: phrasing .* must use exactly \{things\}"),
        ('{counting: {phrasings: ["How many {thing} are there?"]}}', r"must use exactly \{things\}"),
        ("{colour_count: {}}", "unknown question family 'colour_count'"),
    ],
)
def test_recipe_rejects_bad_families(tmp_path, families, message):
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(f"""
        name: r
        sources: [{{name: s, kind: synthetic_scenes}}]
        models:
          vlm: {{backend: transformers, model: base_model}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model}}
          small_solver: {{backend: transformers, model: base_model}}
        stages:
          questions_grounded:
            families: {families}
        """)
    )
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe(p)
    assert "line 11: stages.questions_grounded.families" in str(e.value)


def test_demo_recipe_declares_every_family_with_several_phrasings():
    stage = load_recipe().stages.questions_grounded
    assert len(stage.families) == 8 and all(len(f.phrasings) >= 2 for f in stage.families.values())
    assert json.loads(json.dumps(stage.model_dump(mode="json")))["llm"]["enabled"] is True
