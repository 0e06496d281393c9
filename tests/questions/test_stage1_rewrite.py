"""Stage 1's rewrite path (stage 2's, shared): a rewrite is kept only where the verifier, reading it, picks the gold.

A real Engine over SmolLM2 whose call cache holds the replies this test recorded, so each outcome is exact.
"""

from collections import Counter

from lgt.engines import Request
from lgt.ids import content_id
from lgt.images.sources import read_shard
from lgt.images.validate import build_shard
from lgt.prompts import load_prompt
from lgt.questions.grounded import build_questions_grounded
from lgt.questions.rewrite import REWRITE_PROMPT
from lgt.questions.settings import FamilySettings, LLMRewrite
from lgt.questions.verify import solve_request, verifier_view
from lgt.recipe import load_recipe
from schemas.vocab import LETTERS
from tests.fixtures import share_for
from tests.traces.test_traces import Recorded


def four_attribute_questions():
    """One synthetic image's four attribute questions, templates only: (recipe, images, stage settings, rows)."""
    recipe = load_recipe()
    src = recipe.source("synth").model_copy(update={"images_per_shard": 1})
    images = build_shard(read_shard(src, 0)).images
    s1 = recipe.stages.questions_grounded
    s1 = s1.model_copy(
        update={
            "llm": s1.llm.model_copy(update={"enabled": False}),
            "families": {"attribute": FamilySettings(max_per_image=4)},
            "compose_support": False,
        }
    )
    return recipe, images, s1, build_questions_grounded(images, s1, recipe.models, "synth", None).table.to_pylist()


def test_stage1_rewrites_are_kept_only_where_the_verifier_agrees(tf_backend, tmp_path):
    recipe, images, s1, plain = four_attribute_questions()
    assert len(plain) == 4
    s1 = s1.model_copy(update={"rewrite": LLMRewrite(enabled=True)})
    engine = Recorded(tf_backend, tmp_path)
    row = images.to_pylist()[0]
    prompt, keys = load_prompt(REWRITE_PROMPT), list(s1.attributes) or None
    sampling = s1.rewrite.sampling_for(recipe.models).model_copy(update={"n": 1})
    rewrites = [
        f"<question>Looking at the picture: {plain[0]['question']}</question>",  # verifier agrees: kept
        f"<question>Looking at the picture: {plain[1]['question']}</question>",  # verifier picks another: dropped
        f"<question>Is it {plain[2]['answer']}?</question>",  # names the answer: dropped
        f"<question>{plain[3]['question']}</question>",  # the same text: dropped
    ]
    engine.record(
        [
            Request(
                messages=[{"role": "user", "content": prompt.render(question=q["question"])}],
                prefill="<question>",
                sampling=sampling,
            )
            for q in plain
        ],
        [[t.removeprefix("<question>")] for t in rewrites],
    )
    verifier = []
    for q, text, agree in zip(plain[:2], rewrites[:2], (True, False)):
        new = text.removeprefix("<question>").removesuffix("</question>")
        shown, gold = verifier_view(q["question"], [q["answer"], *q["distractors"]], 0)
        pick = gold if agree else (gold + 1) % 4
        verifier.append((solve_request(row, new, shown, recipe.models.verifier.sampling, keys), f"({LETTERS[pick]})"))
    engine.record([r for r, _ in verifier], [[t] for _, t in verifier])

    result = build_questions_grounded(images, s1, recipe.models, "synth", engine)
    out = {r["templated_question"]: r for r in result.table.to_pylist()}
    kept = out[plain[0]["question"]]
    assert kept["rewrite"] == "kept" and kept["question"] == f"Looking at the picture: {plain[0]['question']}"
    assert kept["question_id"] != plain[0]["question_id"] and len(kept["call_keys"]) == 2
    assert kept["answer"] == plain[0]["answer"] and kept["distractors"] == plain[0]["distractors"]
    statuses = Counter(r["rewrite"] for r in out.values())
    assert statuses == Counter({"kept": 1, "verifier_disagrees": 1, "rewrite_leaks_answer": 1, "rewrite_unchanged": 1})
    for q in plain[1:]:  # a dropped rewrite keeps the templated form and its id
        assert out[q["question"]]["question"] == q["question"] and out[q["question"]]["question_id"] == q["question_id"]
    assert result.funnel["template/rewrites_kept"] == 1
    assert result.rejects["rewrite/verifier_disagrees"] == 1


def test_a_share_sends_those_in_it_and_leaves_the_rest_templated(tf_backend, tmp_path):
    recipe, images, s1, plain = four_attribute_questions()
    share = share_for([content_id(q["image_id"], q["question"]) for q in plain], 2)
    s1 = s1.model_copy(update={"rewrite": LLMRewrite(enabled=True, share=share)})
    engine = Recorded(tf_backend, tmp_path)
    prompt = load_prompt(REWRITE_PROMPT)
    sampling = s1.rewrite.sampling_for(recipe.models).model_copy(update={"n": 1})
    same = [  # every rewrite leaves the text as it was: no verifier call needed
        Request(messages=[{"role": "user", "content": prompt.render(question=q["question"])}], prefill="<question>",
                sampling=sampling)
        for q in plain
    ]  # fmt: skip
    engine.record(same, [[f"{q['question']}</question>"] for q in plain])
    result = build_questions_grounded(images, s1, recipe.models, "synth", engine)
    statuses = Counter(r["rewrite"] for r in result.table.to_pylist())
    assert statuses == Counter({"rewrite_unchanged": 2, "": 2})  # two sent, two left as templated
