"""Scoring: the request a benchmark row is sent as, scored rows from crafted replies, Wilson and Newcombe intervals
against published values and a second method, and the summary's counts and order."""

import io
import math
from statistics import NormalDist

import pyarrow as pa
import pytest
from PIL import Image

from lgt.engines import ImageInput, Result, Sample, Sampling
from lgt.evaluation.scoring import difference_interval, eval_request, score_rows, summarize, wilson_interval
from schemas.evaluation import SCORES_ARROW, ScoresSchema

OPTIONS = ["red", "blue", "green", "yellow"]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def bench_row(i: int, gold: str = "B", task: str = "color", image: bytes | None = None, benchmark: str = "cv") -> dict:
    return {
        "benchmark": benchmark,
        "task": task,
        "question_id": f"q{i}",
        "source_file": "bench.jsonl",
        "row": i,
        "question": "What colour is the ball?",
        "options": OPTIONS,
        "gold_letter": gold,
        "image": image,
        "image_id": "img0" if image else None,
        "stand_in": "A red ball on a table." if image else None,
        "system_prompt": "You answer multiple-choice questions.",
        "user_prompt": "What colour is the ball?\n(A) red\n(B) blue\n(C) green\n(D) yellow",
    }


def ok(text: str, key: str = "k", forced_close: bool = False) -> Result:
    return Result([Sample(text, "stop", key=key, forced_close=forced_close)], grounding="text")


# ---------------------------------------------------------------- the request


def test_eval_request_sends_the_image_with_its_stand_in_then_the_prompt():
    data = png()
    req = eval_request(bench_row(0, image=data), Sampling(temperature=0.0, max_new_tokens=64))
    assert req.prefill == "" and req.prompt is None
    assert req.sampling.max_new_tokens == 64 and req.sampling.temperature == 0.0
    system, user = req.messages
    assert system == {"role": "system", "content": "You answer multiple-choice questions."}
    assert user["role"] == "user"
    assert [p["type"] for p in user["content"]] == ["image", "text"]
    assert user["content"][0]["image"] == ImageInput(data, stand_in="A red ball on a table.")
    assert user["content"][1]["text"].endswith("(D) yellow")
    assert req.images() == [ImageInput(data, stand_in="A red ball on a table.")]


def test_eval_request_for_a_text_benchmark_has_no_image_part():
    req = eval_request(bench_row(0), Sampling())
    assert [p["type"] for p in req.messages[1]["content"]] == ["text"]
    assert req.images() == []


# ---------------------------------------------------------------- scored rows

REPLIES = [  # (reply or an error, gold, expected choice, readable, correct)
    ("<think>The ball looks blue.</think> <answer>(B)</answer>", "B", "B", True, True),  # right
    ("<think>It is red, I think.</think> <answer>(A)</answer>", "B", "A", True, False),  # wrong
    ("I don't know", "B", "", False, False),  # unreadable
    ("<think>Hmm.</think><answer>not (B), it is (C)</answer>", "C", "", False, False),  # negated: read_choice None
    ("<think>Hmm.</think><answer>not (B)</answer>", "A", "", False, False),  # a negation alone is no answer
    ("<think>The ball is green", "C", "", False, False),  # the thought never closed
    ("The answer is (D).", "D", "D", True, True),  # an answer statement
    (None, "B", "", False, False),  # the call failed after its retries
]


def test_score_rows_reads_each_reply_with_the_one_reader():
    rows = [bench_row(i, gold=g) for i, (_, g, *_r) in enumerate(REPLIES)]
    results = [
        Result([Sample.failed("timeout", TimeoutError("read timed out"))], "text")
        if text is None
        else ok(text, f"k{i}")
        for i, (text, *_r) in enumerate(REPLIES)
    ]
    table = score_rows(rows, results, "sft_checkpoint", "rev1")
    assert table.schema == SCORES_ARROW
    got = table.to_pylist()
    assert [(r["choice"], r["readable"], r["correct"]) for r in got] == [(c, rd, co) for _, _, c, rd, co in REPLIES]
    assert [r["question_id"] for r in got] == [f"q{i}" for i in range(len(REPLIES))]
    assert {r["model"] for r in got} == {"sft_checkpoint"} and {r["model_revision"] for r in got} == {"rev1"}
    assert got[0]["output"] == REPLIES[0][0] and got[0]["call_key"] == "k0"
    failed = got[-1]
    assert (failed["output"], failed["error"], failed["call_key"], failed["forced_close"]) == ("", "timeout", "", False)
    assert all(r["error"] == "" for r in got[:-1])
    ScoresSchema.validate(table.to_pandas())  # readable == (choice != ""), correct == (choice == gold)


def test_score_rows_takes_the_first_sample_and_keeps_forced_close():
    result = Result(
        [Sample("<think>..</think><answer>(C)</answer>", "stop", key="a", forced_close=True), Sample("(B)", "stop")],
        "text",
    )
    (r,) = score_rows([bench_row(0, gold="C")], [result], "base_model", "main").to_pylist()
    assert (r["choice"], r["correct"], r["forced_close"], r["call_key"]) == ("C", True, True, "a")


def test_a_prefilled_reply_is_read_and_kept_with_its_prefill():
    """With the thought skipped (prefill "<think></think><answer>"), the reply is the answer block's inside."""
    prefill = "<think>\n</think>\n<answer>"
    rows = [bench_row(i, gold="B") for i in range(3)]
    results = [ok("(B)</answer>"), ok("(C) blue"), ok("blue")]  # right; letter and text disagree; the text
    got = score_rows(rows, results, "base_model", "main", prefill).to_pylist()
    assert [(r["choice"], r["correct"]) for r in got] == [("B", True), ("", False), ("B", True)]
    assert got[0]["output"] == prefill + "(B)</answer>"
    assert eval_request(rows[0], Sampling(), prefill).prefill == prefill


def test_score_rows_letters_run_past_d_for_ten_options():
    row = bench_row(0, gold="J") | {"options": [f"option number {i}" for i in range(10)]}
    (r,) = score_rows([row], [ok("<answer>(J)</answer>")], "m", "r").to_pylist()
    assert (r["choice"], r["correct"]) == ("J", True)


def test_score_rows_names_the_file_row_and_field_on_bad_input():
    with pytest.raises(ValueError, match="2 benchmark rows but 1 results"):
        score_rows([bench_row(0), bench_row(1)], [ok("(B)")], "m", "r")
    with pytest.raises(ValueError, match=r"bench\.jsonl row 3 .*field samples"):
        score_rows([bench_row(3)], [Result([], "text")], "m", "r")
    with pytest.raises(ValueError, match=r"bench\.jsonl row 4 .*field gold_letter"):
        score_rows([bench_row(4, gold="E")], [ok("(B)")], "m", "r")
    with pytest.raises(ValueError, match=r"bench\.jsonl row 5 .*field gold_letter"):
        score_rows([bench_row(5, gold="")], [ok("(B)")], "m", "r")
    with pytest.raises(ValueError, match=r"bench\.jsonl row 6 .*field options: 11 options"):
        score_rows([bench_row(6) | {"options": [f"o{i}" for i in range(11)]}], [ok("(B)")], "m", "r")


# ---------------------------------------------------------------- Wilson


def wilson_by_bisection(k: int, n: int, confidence: float) -> tuple[float, float]:
    """A second method: the p where the score statistic |k/n - p| / sqrt(p(1-p)/n) equals z, found by bisection."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    ph = k / n

    def excess(p: float) -> float:
        return abs(ph - p) - z * math.sqrt(p * (1 - p) / n)

    def root(a: float, b: float) -> float:  # excess(a) and excess(b) differ in sign
        for _ in range(200):
            mid = (a + b) / 2
            if (excess(mid) > 0) == (excess(a) > 0):
                a = mid
            else:
                b = mid
        return (a + b) / 2

    lo = 0.0 if k == 0 else root(0.0, ph)
    hi = 1.0 if k == n else root(ph, 1.0)
    return lo, hi


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [
        (0, 10, 0.0, 0.2775),  # hand-worked: z^2 / (n + z^2) = 3.8415 / 13.8415
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe 1998 (single proportion), example 81/263, score method
    ],
)
def test_wilson_matches_published_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


@pytest.mark.parametrize("k, n", [(0, 10), (1, 10), (5, 10), (81, 263), (262, 263), (3, 7)])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wilson_agrees_with_the_score_test_inverted_numerically(k, n, confidence):
    assert wilson_interval(k, n, confidence) == pytest.approx(wilson_by_bisection(k, n, confidence), abs=1e-9)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0 < hi < 1
    assert wilson_interval(5, 10, 0.99)[0] < wilson_interval(5, 10, 0.9)[0]  # wider at higher confidence
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, 1.0)


# ---------------------------------------------------------------- Newcombe


@pytest.mark.parametrize(
    "k1, n1, k2, n2, lo, hi",
    [  # Newcombe 1998, "Interval estimation for the difference between independent proportions", method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
    ],
)
def test_newcombe_matches_the_paper(k1, n1, k2, n2, lo, hi):
    assert difference_interval(k1, n1, k2, n2) == pytest.approx((lo, hi), abs=5e-5)


def test_newcombe_is_built_from_the_two_wilson_intervals_and_is_antisymmetric():
    l1, u1 = wilson_by_bisection(8, 10, 0.95)
    l2, u2 = wilson_by_bisection(5, 10, 0.95)
    lo = 0.3 - math.sqrt((0.8 - l1) ** 2 + (u2 - 0.5) ** 2)
    hi = 0.3 + math.sqrt((u1 - 0.8) ** 2 + (0.5 - l2) ** 2)
    assert difference_interval(8, 10, 5, 10) == pytest.approx((lo, hi), abs=1e-9)
    a, b = difference_interval(5, 10, 8, 10)
    assert (a, b) == pytest.approx((-hi, -lo), abs=1e-12)
    assert difference_interval(3, 10, 0, 0) == (-1.0, 1.0)


# ---------------------------------------------------------------- the summary


def scores(records: list[tuple]) -> pa.Table:
    """(model, benchmark, task, question_id, gold, choice, error, forced_close) rows as a SCORES_ARROW table."""
    rows = [
        {
            "model": m,
            "model_revision": "r",
            "benchmark": b,
            "task": t,
            "question_id": q,
            "gold_letter": gold,
            "output": "",
            "choice": choice,
            "readable": choice != "",
            "correct": choice == gold,
            "forced_close": fc,
            "error": err,
            "call_key": "",
        }
        for m, b, t, q, gold, choice, err, fc in records
    ]
    return pa.Table.from_pylist(rows, schema=SCORES_ARROW)


def test_summarize_counts_each_task_and_overall_in_a_fixed_order():
    table = scores(
        [
            ("sft", "zeta", "depth", "q1", "A", "A", "", False),
            ("sft", "zeta", "depth", "q2", "A", "B", "", True),
            ("sft", "zeta", "count", "q3", "B", "B", "", False),
            ("sft", "alpha", "x", "q1", "C", "", "", True),  # unreadable
            ("sft", "alpha", "x", "q2", "C", "", "timeout", False),  # failed: wrong, an error, not unreadable
            ("base", "zeta", "depth", "q1", "A", "A", "", False),
        ]
    )
    summary = summarize(table)
    keys = [(s["model"], s["benchmark"], s["task"]) for s in summary]
    assert keys == [
        ("sft", "alpha", "x"),
        ("sft", "alpha", "overall"),
        ("sft", "zeta", "count"),
        ("sft", "zeta", "depth"),
        ("sft", "zeta", "overall"),
        ("base", "zeta", "depth"),
        ("base", "zeta", "overall"),
    ]  # models as first seen, benchmarks and tasks sorted, overall last
    by = {k: s for k, s in zip(keys, summary)}
    zeta = by["sft", "zeta", "overall"]
    assert (zeta["n"], zeta["correct"], zeta["unreadable"], zeta["errors"], zeta["forced_close"]) == (3, 2, 0, 0, 1)
    assert zeta["accuracy"] == pytest.approx(2 / 3)
    assert (zeta["lo"], zeta["hi"]) == pytest.approx(wilson_by_bisection(2, 3, 0.95), abs=1e-9)
    alpha = by["sft", "alpha", "overall"]
    assert (alpha["n"], alpha["correct"], alpha["unreadable"], alpha["errors"], alpha["forced_close"]) == (
        2,
        0,
        1,
        1,
        1,
    )
    assert (alpha["lo"], alpha["hi"]) == pytest.approx((0.0, 0.6576), abs=5e-5)  # 0/2: 3.8415 / 5.8415
    depth = by["sft", "zeta", "depth"]
    assert (depth["n"], depth["correct"], depth["accuracy"]) == (2, 1, 0.5)
    narrow = summarize(table, confidence=0.8)[4]
    assert narrow["lo"] > zeta["lo"] and narrow["hi"] < zeta["hi"]


def test_summarize_refuses_a_question_scored_twice_and_a_task_named_overall():
    with pytest.raises(ValueError, match=r"row 1: field question_id"):
        summarize(scores([("m", "b", "t", "q1", "A", "A", "", False)] * 2))
    with pytest.raises(ValueError, match=r"row 0: field task"):
        summarize(scores([("m", "b", "overall", "q1", "A", "A", "", False)]))
