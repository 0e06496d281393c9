"""The trace stages on crafted replies: parsing, gold-only correctness, cue prefills, leak and repetition filters.

Crafted replies reach the stage code through the real engine: they are
recorded in the call cache under the keys of the stage's own requests (what a
rerun after a crash replays), with the real SmolLM2 backend behind it, so any
request the test did not record would be generated for real and fail the
expectations.
"""

import pytest

from lgt.engines import Engine, Sample, Sampling
from lgt.engines.cache import CallCache
from lgt.engines.settings import Thinking
from lgt.traces.difficulty import blind_request, build_difficulty, pass_rate_histogram
from lgt.traces.four_phase import build_four_phase, four_phase_requests, judge_requests
from lgt.traces.long_cots import build_long_cots, long_cot_requests, with_full_stop
from lgt.traces.parse import (
    Parsed,
    four_phase_structure,
    leak,
    leak_pattern,
    parse_think_answer,
    repeated_ngram,
)
from lgt.traces.requests import pick_questions, question_requests
from lgt.traces.settings import DifficultySettings, FourPhaseSettings, LongCotsSettings, SimpleCotsSettings
from lgt.traces.simple_cots import build_simple_cots, simple_cot_requests
from schemas.traces import SIMPLE_COTS_ARROW, DifficultySchema, FourPhaseSchema, LongCotsSchema, SimpleCotsSchema
from tests.fixtures import question_shard, share_for

# --------------------------------------------------------------- parsing and correctness


@pytest.mark.parametrize(
    "text, want",
    [
        ("<think>The ball is red.</think> <answer>(A)</answer>", Parsed("The ball is red.", "(A)")),
        ("<think>\nLook.\n</think>\n<answer> B. </answer>", Parsed("Look.", "B.")),
        ("<think>x</think><answer>(A)</answer> then <answer>(C)</answer>", Parsed("x", "(C)")),  # the last answer
        ("<think>never closed <answer>(A)</answer>", "thought_not_closed"),
        ("<think>a</think><think>b</think><answer>A</answer>", "think_tags"),
        ("<think>a</think> b </think><answer>A</answer>", "think_tags"),
        ("<think>  </think><answer>A</answer>", "empty_thought"),
        ("<think>a</think> The answer is A.", "no_answer"),
        ("<think>a</think><answer>A", "no_answer"),  # an unclosed answer was cut off
        ("<think>a</think><answer> </answer>", "empty_answer"),
        ("<answer>(A)</answer><think>a</think>", "think_tags"),  # must start inside the prefilled <think>
    ],
)
def test_parse_think_answer(text, want):
    assert parse_think_answer(text) == want


def test_repetition_filter_counts_any_50_gram_three_times():
    words = [f"w{i}" for i in range(50)]
    twice = " ".join(words + ["x"] + words)
    thrice = " ".join(words + ["x"] + words + ["y"] + words)
    assert not repeated_ngram(twice, 50, 3)
    assert repeated_ngram(thrice, 50, 3)
    assert not repeated_ngram(" ".join(words[:49] * 3), 50, 3)  # shorter runs do not count
    assert repeated_ngram("a " * 52, 50, 3)  # overlapping occurrences count: 52 words hold three 50-grams "a a …"
    assert not repeated_ngram("a " * 51, 50, 3)


def test_leak_filter_matches_from_word_starts_and_phrases_case_insensitively():
    p = leak_pattern(["said", "describe", "text"], ["the image described"], exempt=["textur"])
    assert leak("As Said above", p) == "Said"
    assert leak("In THE IMAGE DESCRIBED we see", p) == "THE IMAGE DESCRIBED"
    assert leak("it describes", p) == "describes"  # from a word's start, as LPT's substring test (see test_leaks)
    assert leak("the textured ball in this context", p) is None
    assert leak("nothing here", leak_pattern([], [])) is None


def test_four_phase_structure():
    body = " ".join(["word"] * 100)
    ok = f"<think>{body}</think> so. Therefore, the final answer is <answer>(B)</answer>."
    assert four_phase_structure(ok, 100) is None
    assert four_phase_structure(ok.replace("</think>", "</think><think></think>"), 100) == "think_blocks"
    assert four_phase_structure(ok.replace("</answer>", ""), 100) == "answer_tags_unbalanced"
    assert four_phase_structure(f"<think>{body}</think> (B)", 100) == "no_answer"
    assert four_phase_structure(ok, 200) == "too_short"
    inside = f"<think>{body} <answer>(B)</answer></think> Therefore, the final answer is (B)."
    assert four_phase_structure(inside, 100) == "answer_inside_think"  # MMFR answers after the thought


# --------------------------------------------------------------- stages on recorded replies


@pytest.fixture(scope="module")
def shard():
    """Real images (4 synthetic scenes) and their real stage-1/2 questions, LLM paths off."""
    return question_shard(4)


class Recorded:
    """`engine_for`: one real Engine over the SmolLM2 backend whose cache holds the replies a test recorded."""

    def __init__(self, backend, tmp_path):
        self.engine = Engine(backend, CallCache(tmp_path / "calls.sqlite"))

    def record(self, requests, texts_per_request, finish="stop"):
        for keys, texts in zip(self.engine.keys(requests), texts_per_request):
            for key, text in zip(keys, texts, strict=True):
                self.engine.cache.put(self.engine.backend.model_id, Sample(text, finish, completion_tokens=7, key=key))

    def __call__(self, role):
        return self.engine


def ids(questions):
    return questions.column("question_id").to_pylist()


def _q(questions, i):
    return questions.to_pylist()[i]


def test_pick_questions_decides_each_question_alone(shard):
    _, questions, _ = shard
    qs = questions.to_pylist()
    assert pick_questions(qs, None) == qs and pick_questions(qs, 1.0) == qs and pick_questions(qs, 0.0) == []
    half = pick_questions(qs, 0.5)
    assert 0 < len(half) < len(qs)
    assert {q["question_id"] for q in pick_questions(qs, 0.25)} <= {q["question_id"] for q in half}  # nested
    # dropping or adding other questions (an edit elsewhere in the shard) never changes whether one is sent
    assert pick_questions(qs[1:], 0.5) == [q for q in half if q is not qs[0]]
    assert pick_questions([*qs, {**qs[0], "question_id": "new"}], 0.5)[: len(half)] == half


def test_a_share_keeps_about_that_share_of_many_items():
    from lgt.ids import in_share

    # 20,000 ids, share 0.2: binomial sd 0.0028, so 0.2 +- 0.015 is over five sd
    kept = sum(in_share(0.2, f"q{i}") for i in range(20_000)) / 20_000
    assert abs(kept - 0.2) < 0.015


def test_simple_cots_marks_against_the_gold_only_and_drops_duplicates(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    stage = SimpleCotsSettings(
        share=share_for(ids(questions), 2), sampling=Sampling(n=6, temperature=0.7, max_new_tokens=64)
    )
    sent, requests = simple_cot_requests(questions, images, stage, keys)
    rec = Recorded(tf_backend, tmp_path)
    replies = []
    for q in sent:
        gold = q["gold_letter"]
        other = next(L for L in "ABCD" if L != gold)
        gold_text, other_text = q["options"]["ABCD".index(gold)], q["options"]["ABCD".index(other)]
        replies.append(
            [
                f"I look closely.</think> <answer>({gold})</answer>",  # O
                f"I look closely.</think> <answer>({gold})</answer>",  # exact duplicate: dropped
                f"The Object Is There.</think><answer>{gold_text}</answer>",  # O by text, casing kept
                f"Hmm.</think><answer>{other_text}</answer>",  # X: another option's text is wrong
                f"Both.</think><answer>{gold} or {other}</answer>",  # X: names two options
                "No end to this thought <answer>(A)</answer>",  # unparseable
            ]
        )
    rec.record(requests, replies)
    result = build_simple_cots(questions, images, stage, rec, keys)
    assert rec.engine.stats.calls == 0 and rec.engine.stats.cache_hits == 12
    rows = result.table.to_pylist()
    assert [r["category"] for r in rows] == ["O", "O", "X", "X"] * 2
    assert rows[1]["thought"] == "The Object Is There."
    assert rows[3]["choice"] == "" and rows[2]["choice"] != rows[2]["gold_letter"]
    assert all(r["response"].startswith("<think>") and r["grounding"] == "caption" for r in rows)
    assert dict(result.rejects) == {"duplicate": 2, "unparseable/thought_not_closed": 2}
    assert result.funnel == {
        "questions": questions.num_rows,
        "sent": 2,
        "samples": 12,
        "kept": 8,
        "correct": 4,
        "forced_close": 0,
    }
    SimpleCotsSchema.validate(result.table.to_pandas())


def _simple_table(questions, images, keys, tf_backend, tmp_path, thoughts):
    """A real simple_cots table: one recorded reply per question, correct or not."""

    def wrong(q):
        return next(letter for letter in "ABCD" if letter != q["gold_letter"])

    stage = SimpleCotsSettings(
        share=share_for(ids(questions), len(thoughts)), sampling=Sampling(n=1, max_new_tokens=64)
    )
    sent, requests = simple_cot_requests(questions, images, stage, keys)
    rec = Recorded(tf_backend, tmp_path / "simple")
    rec.record(
        requests,
        [
            [f"{t}</think><answer>({q['gold_letter'] if ok else wrong(q)})</answer>"]
            for q, (t, ok) in zip(sent, thoughts)
        ],
    )
    return build_simple_cots(questions, images, stage, rec, keys).table


def test_long_cots_prefill_keeps_casing_adds_full_stop_and_cue_then_labels_and_filters(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    simple = _simple_table(
        questions, images, keys, tf_backend, tmp_path, [("The RED Cube is LEFT", True), ("I think it is Blue!", False)]
    )
    stage = LongCotsSettings(sampling=Sampling(n=4, temperature=0.7, max_new_tokens=96), seed=3)
    jobs, requests = long_cot_requests(simple, questions, images, stage, keys)
    assert len(requests) == 8
    for (cot, q, cue, kept, j), req in zip(jobs, requests):
        assert cue in stage.cues
        assert req.prefill.startswith("<think>\nOkay, the question is: " + q["question"])
        assert all(f"({L}) {o}" in req.prefill for L, o in zip("ABCD", q["options"]))
        assert req.prefill.endswith(kept) and kept.endswith(cue)
        assert kept[: -len(cue)] in (with_full_stop(cot["thought"]) + "\n", with_full_stop(cot["thought"]) + " ")
        assert "description" in req.sampling.banned_words and req.sampling.n == 1 and req.sampling.seed == j
        user = req.messages[0]["content"]
        assert "Image description:" in user and "Never mention" in user and req.images() == []
    kept_by_thought = {cot["thought"]: kept for cot, _, _, kept, _ in jobs}
    assert kept_by_thought["The RED Cube is LEFT"].startswith("The RED Cube is LEFT.")  # casing kept, full stop added
    assert kept_by_thought["I think it is Blue!"].startswith("I think it is Blue!")  # already ends a sentence
    assert len({(cue, kept[-len(cue) - 1]) for _, _, cue, kept, _ in jobs}) > 1  # cues and separators vary

    def gold_wrong(q):
        return q["gold_letter"], next(L for L in "ABCD" if L != q["gold_letter"])

    # per sample index: (reply, expected category or None when dropped), for the correct and the wrong simple CoT
    after_o = [
        (" let me check again. It is right.</think><answer>({g})</answer>", "O->O"),
        (" no, it is the other one.</think><answer>({w})</answer>", "O->X"),
        (" as the text says, yes.</think><answer>(A)</answer>", None),  # leak
        (" it keeps going and never", None),
    ]  # never closes the thought
    after_x = [
        (" looking again, it is this.</think><answer>{g}.</answer>", "X->O"),
        (" still wrong.</think><answer>({w})</answer>", "X->X"),
        ("</think><answer>(A)</answer>", None),  # nothing added
        (" fine.</think><answer>{g} or {w}</answer>", "X->X"),
    ]  # names two options
    plan = [(after_o if cot["correct"] else after_x)[j] for cot, *_, j in jobs]
    rec = Recorded(tf_backend, tmp_path)
    rec.record(
        requests, [[reply.format(g=gold_wrong(q)[0], w=gold_wrong(q)[1])] for (reply, _), (_, q, *_) in zip(plan, jobs)]
    )
    result = build_long_cots(simple, questions, images, stage, rec, keys)
    rows = result.table.to_pylist()
    assert [r["category"] for r in rows] == [cat for _, cat in plan if cat]
    o_o = next(r for r in rows if r["category"] == "O->O")
    o_job = next(job for job in jobs if job[0]["correct"] and job[4] == 0)
    assert o_o["thought"] == o_job[3] + " let me check again. It is right."
    assert o_o["added_chars"] == len(o_job[2] + " let me check again. It is right.")
    assert o_o["call_keys"][0] == o_job[0]["call_key"] and o_o["cot_id"] == o_job[0]["cot_id"]
    assert dict(result.rejects) == {"leak/word:text": 1, "unparseable/thought_not_closed": 1, "empty_continuation": 1}
    LongCotsSchema.validate(result.table.to_pandas())


def test_four_phase_filters_and_judges(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    stage = FourPhaseSettings(
        share=share_for(ids(questions), 1),
        min_words=20,
        ngram=5,
        max_ngram_repeats=3,
        sampling=Sampling(n=9, temperature=1.0, max_new_tokens=256),
    )
    sent, requests = four_phase_requests(questions, {r["image_id"]: r for r in images.to_pylist()}, stage, keys)
    q = sent[0]
    assert "four phases" in requests[0].messages[0]["content"] and requests[0].prefill == "<think>"
    body = " ".join(f"step{i}" for i in range(25))
    loop = " ".join(["the cube is red"] * 4)  # "the cube is red the" three times
    gold, other = q["gold_letter"], next(L for L in "ABCD" if L != q["gold_letter"])
    # matching cannot read "the second option": the judge decides, by its last line only
    nth = {L: f"the {word} option" for L, word in zip("ABCD", ["first", "second", "third", "fourth"])}
    rec = Recorded(tf_backend, tmp_path)
    rec.record(
        requests,
        [
            [
                f"{body}</think> Therefore, the final answer is <answer>({gold})</answer>.",  # matched
                f"{body}</think> Therefore, the final answer is <answer>({other})</answer>.",  # matched, inconsistent
                f"{body}</think> Therefore, the final answer is <answer>{nth[gold]}</answer>.",  # judged Equivalent
                f"{body} {loop}</think> Therefore, the final answer is <answer>(A)</answer>.",  # 5-gram thrice
                f"{body}</think> Therefore <answer>(A)</answer> <answer>(B).",  # unbalanced tags
                "too short</think><answer>(A)</answer>",
                # the only <answer> is inside the thought
                f"{body} so <answer>({gold})</answer></think> Therefore, the final answer is ({gold}).",
                f"{body}</think> Therefore, the final answer is <answer>{nth[other]}</answer>.",  # "Not equivalent."
                f"{body}</think> Therefore, the final answer is <answer>{nth[gold]}, I think</answer>.",  # unreadable
            ]
        ],
    )
    finals = [nth[gold], nth[other], f"{nth[gold]}, I think"]
    rows_for_judge = [
        {"question_id": q["question_id"], "answer": gold, "original_answer": q["gold_text"], "final_answer": f}
        for f in finals
    ]
    rec.record(
        judge_requests(rows_for_judge, {q["question_id"]: q}, Sampling(n=1, temperature=0, max_new_tokens=8)),
        [["Equivalent"], ["Not equivalent."], ["The answers are equivalent."]],
    )
    result = build_four_phase(questions, images, stage, Sampling(n=1, temperature=0, max_new_tokens=8), rec, keys)
    rows = result.table.to_pylist()
    assert [(r["is_consistent"], r["checked_by"]) for r in rows] == [
        (True, "normalised"),
        (False, "normalised"),
        (True, "judge"),
        (False, "judge"),
        (False, "judge"),  # a verdict that is not the closed vocabulary is no verdict
    ]
    assert [r["final_answer"] for r in rows[2:]] == finals
    assert rows[2]["consistency_analysis"] == "judge: Equivalent" and len(rows[2]["call_keys"]) == 2
    assert rows[3]["consistency_analysis"] == "judge: Not equivalent."
    assert rows[4]["consistency_analysis"].startswith("judge unreadable")
    assert rows[0]["caption"] and rows[0]["original_answer"] == q["gold_text"] and rows[0]["answer"] == q["gold_letter"]
    assert dict(result.rejects) == {
        "repetition": 1,
        "structure/answer_tags_unbalanced": 1,
        "structure/too_short": 1,
        "structure/answer_inside_think": 1,
        "inconsistent": 3,
    }
    assert {k: result.funnel[k] for k in ("matched", "judge_equivalent", "judge_different", "judge_unreadable")} == {
        "matched": 2,
        "judge_equivalent": 1,
        "judge_different": 1,
        "judge_unreadable": 1,
    }
    assert result.funnel["consistent"] == 2
    assert rec.engine.stats.calls == 0
    FourPhaseSchema.validate(result.table.to_pandas())


def test_difficulty_pass_rates_subsets_and_histogram(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    share = share_for(ids(questions), 3)
    stage = DifficultySettings(share=share, sampling=Sampling(n=4, temperature=0.7, max_new_tokens=32))
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    sent, requests = question_requests(questions.to_pylist(), by_image, share, stage.sampling, "", keys)
    rec = Recorded(tf_backend, tmp_path)
    g = [q["gold_letter"] for q in sent]
    w = [next(L for L in "ABCD" if L != x) for x in g]
    rec.record(
        requests,
        [
            [f"<answer>({g[0]})</answer>"] * 4,  # 4/4
            [
                f"The answer is {g[1]}.",
                f"<answer>({w[1]})</answer>",
                "no idea",
                f"<answer>{g[1]} or {w[1]}</answer>",
            ],  # 1/4
            [f"<answer>({w[2]})</answer>"] * 4,  # 0/4
        ],
    )
    blind = [blind_request(q, stage) for q in sent]  # the text alone: the bias audit's model baseline
    for q, b in zip(sent, blind):
        assert [m["content"] for m in b.messages] == [q["system_prompt"], q["user_prompt"]] and not b.images()
        assert b.sampling.n == 1 and b.sampling.temperature == 0.0
    rec.record(blind, [[f"<answer>({w[0]})</answer>"], [f"<answer>({g[1]})</answer>"], ["I cannot see the image."]])
    result = build_difficulty(questions, images, stage, rec, keys)
    rows = result.table.to_pylist()
    assert [(r["n_correct"], r["pass_rate"], r["pass_rate_zero"], r["pass_rate_below_1"]) for r in rows] == [
        (4, 1.0, False, False),
        (1, 0.25, False, True),
        (0, 0.0, True, True),
    ]
    assert rows[1]["choices"] == [g[1], w[1], "", ""]
    assert [r["blind_choice"] for r in rows] == [w[0], g[1], ""]
    assert (result.funnel["blind_attempts"], result.funnel["blind_correct"]) == (3, 1)
    assert rec.engine.stats.calls == 0  # every reply, the blind ones too, came from the recording
    assert pass_rate_histogram([r["pass_rate"] for r in rows], 4) == {"0/4": 1, "1/4": 1, "2/4": 0, "3/4": 0, "4/4": 1}
    DifficultySchema.validate(result.table.to_pandas())


def test_empty_inputs_give_empty_valid_tables(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    rec = Recorded(tf_backend, tmp_path)
    none = questions.slice(0, 0)
    assert build_simple_cots(none, images, SimpleCotsSettings(), rec, keys).table.num_rows == 0
    empty = SIMPLE_COTS_ARROW.empty_table()
    result = build_long_cots(empty, questions, images, LongCotsSettings(), rec, keys)
    assert result.table.num_rows == 0 and rec.engine.stats.calls == 0
    LongCotsSchema.validate(result.table.to_pandas())


# --------------------------------------------------------------- thinking budgets, SmolLM2 for real


def test_simple_cots_under_a_budget_are_answered_marked_and_dropped_when_the_recipe_says(shard, tf_backend, tmp_path):
    images, questions, keys = shard
    budget = Sampling(n=2, temperature=0.7, thinking=Thinking(max_tokens=12, answer_max_tokens=8))
    kept = SimpleCotsSettings(share=share_for(ids(questions), 2), sampling=budget)
    engine = Engine(tf_backend, CallCache(tmp_path / "calls.sqlite"))
    result = build_simple_cots(questions, images, kept, lambda role: engine, keys)
    rows = result.table.to_pylist()
    forced = engine.stats.forced_close
    assert forced >= 1 and engine.stats.calls == 8  # 4 samples, a thought and an answer each
    assert sum(r["forced_close"] for r in rows) == result.funnel["forced_close"] <= forced
    assert len(rows) + sum(result.rejects.values()) == 4
    for r in rows:  # every kept reply has the closed thought and an answer parsed from it
        assert "</think>\n<answer>" in r["response"] and r["answer"]
    SimpleCotsSchema.validate(result.table.to_pandas())

    dropped = build_simple_cots(
        questions, images, kept.model_copy(update={"keep_forced": False}), lambda role: engine, keys
    )
    assert dropped.rejects["forced/close"] == forced and engine.stats.calls == 8  # all cached the second time
    assert [r["cot_id"] for r in dropped.table.to_pylist()] == [r["cot_id"] for r in rows if not r["forced_close"]]
