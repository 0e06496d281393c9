"""SFT sampling, DPO pair rules and RL prompts on hand-built trace tables, against hand-worked answers."""

import math
import random
from collections import Counter

import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lgt.datasets.settings import DpoPairsSettings, RlPromptsSettings, SftDataSettings
from lgt.datasets.training_sets import (
    build_dpo,
    build_rl,
    build_sft,
    canonical_answer,
    check_rl_disjoint,
    dpo_candidates,
    held_out_count,
    held_out_questions,
    target_text,
    weighted_sample,
)
from schemas.questions import QUESTIONS_ARROW
from schemas.traces import (
    DIFFICULTY_ARROW,
    FOUR_PHASE_ARROW,
    LONG_COTS_ARROW,
    SIMPLE_COTS_ARROW,
    TARGET,
    DpoSchema,
    RlSchema,
    SftSchema,
)

# --- crafted rows: ids are hex names padded with zeros, so they sort as written ----------------


def hid(name: str) -> str:
    return name.ljust(32, "0")


def question(qid, stage=1, answer_format="(X)", family="counting", **kw):
    row = {
        "question_id": qid,
        "image_id": "f" * 32,
        "source": "demo",
        "stage": stage,
        "family": family,
        "origin": "template",
        "hops": 1,
        "question": "How many squares are there?",
        "options": ["one", "two", "three", "four"],
        "gold_letter": "B",
        "gold_text": "two",
        "option_style": "(A) text",
        "answer_format": answer_format,
        "reasoning_type": "counting",
        "system_prompt": "Think inside <think></think>, answer inside <answer></answer>.",
        "user_prompt": "How many squares are there? (A) one (B) two (C) three (D) four",
        "grounding_ids": [],
        "parents": [],
        "prompt_version": "v1",
        "seed": 0,
    }
    return {**row, **kw}


def simple(name, qid, category, thought=None, answer=None, **kw):
    ok = category == "O"
    thought = f"simple thought {name}" if thought is None else thought
    row = {
        "cot_id": hid(name),
        "question_id": qid,
        "image_id": "f" * 32,
        "source": "demo",
        "stage": 1,
        "family": "counting",
        "sample_index": 0,
        "response": f"<think>{thought}</think>",
        "thought": thought,
        "answer": answer or ("(B)" if ok else "(C)"),
        "choice": "B" if ok else "C",
        "gold_letter": "B",
        "correct": ok,
        "category": category,
        "grounding": "image",
        "completion_tokens": 10,
        "model": "vlm",
        "prompt_version": "v1",
        "call_key": f"key-{name}",
    }
    return {**row, **kw}


def long(name, parent, qid, category, thought=None, added_chars=10, answer=None, **kw):
    ok = category.endswith("->O")
    thought = f"long thought {name} Wait, more" if thought is None else thought
    row = {
        "trace_id": hid(name),
        "cot_id": hid(parent),
        "question_id": qid,
        "image_id": "f" * 32,
        "source": "demo",
        "stage": 1,
        "family": "counting",
        "sample_index": 0,
        "cue": "Wait,",
        "continuation": "more",
        "thought": thought,
        "added_chars": added_chars,
        "answer": answer or ("(B)" if ok else "(D)"),
        "choice": "B" if ok else "D",
        "gold_letter": "B",
        "simple_correct": category.startswith("O"),
        "correct": ok,
        "category": category,
        "model": "reasoner",
        "prompt_version": "v1",
        "call_keys": [f"key-{parent}", f"key-{name}"],
    }
    return {**row, **kw}


def four(name, qid, consistent=True, **kw):
    row = {
        "id": hid(name),
        "question_id": qid,
        "image_id": "f" * 32,
        "source": "demo",
        "stage": 1,
        "family": "counting",
        "original_question": "How many squares are there?",
        "original_answer": "two",
        "question": "How many squares? (A) one (B) two (C) three (D) four",
        "answer": "B",
        "caption": "",
        "response": "<think>four phases</think><answer>B</answer>",
        "thought": f"four phases {name}",
        "final_answer": "B",
        "words": 120,
        "is_consistent": consistent,
        "consistency_analysis": "agrees",
        "checked_by": "normalised",
        "grounding": "image",
        "model": "vlm",
        "prompt_version": "v1",
        "call_keys": [f"key-{name}"],
    }
    return {**row, **kw}


def difficulty(qid, n_correct, k=4):
    return {
        "question_id": qid,
        "image_id": "f" * 32,
        "source": "demo",
        "stage": 1,
        "family": "counting",
        "k": k,
        "n_correct": n_correct,
        "pass_rate": n_correct / k,
        "pass_rate_zero": n_correct == 0,
        "pass_rate_below_1": n_correct < k,
        "choices": ["B"] * n_correct + ["C"] * (k - n_correct),
        "model": "solver",
        "call_keys": [f"d-{qid}"],
    }


def tables(questions=(), simples=(), longs=(), fours=(), diffs=()):
    return (
        pa.Table.from_pylist(list(questions), schema=QUESTIONS_ARROW),
        pa.Table.from_pylist(list(simples), schema=SIMPLE_COTS_ARROW),
        pa.Table.from_pylist(list(longs), schema=LONG_COTS_ARROW),
        pa.Table.from_pylist(list(fours), schema=FOUR_PHASE_ARROW),
        pa.Table.from_pylist(list(diffs), schema=DIFFICULTY_ARROW),
    )


def sft(qs=(), ss=(), ls=(), fs=(), ds=(), held_out=frozenset(), **stage):
    return build_sft(*tables(qs, ss, ls, fs, ds), SftDataSettings(**stage), held_out)


QA, QB, QC = "aa" * 16, "bb" * 16, "cc" * 16


# --- format ------------------------------------------------------------------------------------


def test_target_text_strips_and_wraps():
    t = target_text("  I count two squares.\nSo two.\n", " (B) ")
    assert t == "<think> I count two squares.\nSo two. </think> <answer> (B) </answer>"
    assert TARGET.match(t)
    # the artifact checks use the same pattern: a thought over several lines passes, a missing answer does not
    for schema, column in ((SftSchema, "target"), (DpoSchema, "chosen"), (DpoSchema, "rejected")):
        check = schema.to_schema().columns[column]
        check.validate(pd.DataFrame({column: [t]}))
        with pytest.raises(pandera.errors.SchemaError):
            check.validate(pd.DataFrame({column: ["<think> I count.\nTwo. </think> <answer>  </answer>"]}))


@pytest.mark.parametrize("fmt, want", [("(X)", "(B)"), ("X.", "B."), ("text", "two")])
def test_canonical_answer_in_each_format(fmt, want):
    assert canonical_answer("B", "two", fmt) == want


def test_canonical_answer_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="answer_format"):
        canonical_answer("B", "two", "B)")


def test_weighted_sample_draws_distinct_items_deterministically():
    items = list("abcdef")
    draw = weighted_sample(items, [1, 2, 3, 4, 5, 6], 4, random.Random("s"))
    assert len(draw) == 4 and len(set(draw)) == 4
    assert draw == weighted_sample(items, [1, 2, 3, 4, 5, 6], 4, random.Random("s"))
    assert sorted(weighted_sample(items, [1] * 6, 10, random.Random(0))) == items  # k > n: all of them
    # a weight a billion times the others is drawn first, the rest follow
    assert weighted_sample(items, [1, 1, 1e9, 1, 1, 1], 6, random.Random(1))[0] == "c"
    with pytest.raises(ValueError):
        weighted_sample(items, [1, 1, 0, 1, 1, 1], 2, random.Random(0))


# --- DPO ---------------------------------------------------------------------------------------
# QA mixed:  O a1 (-> O->O a1e1, O->X a1e2), O a2 (-> O->X a2e1), X a3 (-> X->O a3e1, X->X a3e2)
# QB only O: O b1 (-> O->X b1e1), O b2 (-> O->O b2e1)
# QC only X: X c1 (-> X->O c1e1, X->X c1e2), X c2 (-> X->X c2e1, X->O c2e2)


def crafted_traces():
    qs = [question(QA), question(QB, answer_format="X."), question(QC, stage=2, family="chain", answer_format="text")]
    ss = [
        simple("a1", QA, "O"),
        simple("a2", QA, "O"),
        simple("a3", QA, "X"),
        simple("b1", QB, "O"),
        simple("b2", QB, "O"),
        simple("c1", QC, "X"),
        simple("c2", QC, "X"),
    ]
    ls = [
        long("a1e1", "a1", QA, "O->O"),
        long("a1e2", "a1", QA, "O->X"),
        long("a2e1", "a2", QA, "O->X"),
        long("a3e1", "a3", QA, "X->O"),
        long("a3e2", "a3", QA, "X->X"),
        long("b1e1", "b1", QB, "O->X"),
        long("b2e1", "b2", QB, "O->O"),
        long("c1e1", "c1", QC, "X->O"),
        long("c1e2", "c1", QC, "X->X"),
        long("c2e1", "c2", QC, "X->X"),
        long("c2e2", "c2", QC, "X->O"),
    ]
    return tables(qs, ss, ls)[:3]


# in candidate order: rules in DPO_RULES order, each sorted by chosen id then rejected id
ALL_CANDIDATES = [
    ("O>O->X", "a1", "a1e2"),
    ("O>O->X", "a2", "a2e1"),
    ("O>O->X", "b1", "b1e1"),
    ("X->O>X->X", "a3e1", "a3e2"),
    ("X->O>X->X", "c1e1", "c1e2"),  # not (c1e1, c2e1) nor (c2e2, c1e2): the two expand different simple CoTs
    ("X->O>X->X", "c2e2", "c2e1"),
    ("X->O>X", "a3e1", "a3"),
    ("X->O>X", "c1e1", "c1"),
    ("X->O>X", "c2e2", "c2"),
    ("O>X", "a1", "a3"),
    ("O>X", "a2", "a3"),  # QA only: the one question with both O and X
    ("O>X->X", "a1", "a3e2"),
    ("O>X->X", "a2", "a3e2"),  # QA only; QC has X->X but no O
]


def triples(rows):
    return [(r["rule"], r["chosen_id"].rstrip("0"), r["rejected_id"].rstrip("0")) for r in rows]


def test_every_rule_makes_exactly_the_hand_worked_pairs_before_dedup():
    cands = dpo_candidates(*crafted_traces(), DpoPairsSettings().rules)
    assert triples(cands) == ALL_CANDIDATES
    # every trace has its own thought, so texts differ exactly where ids do
    assert len({(r["chosen"], r["rejected"]) for r in cands}) == len(cands) == 13


def test_dedup_keeps_the_first_pair_per_chosen_then_per_rejected():
    res = build_dpo(*crafted_traces(), DpoPairsSettings())
    # chosen dedup keeps the first use of a1, a2, b1, a3e1, c1e1, c2e2 (pairs 1-6 above) and drops the other 7;
    # their rejected texts all differ, so rejected dedup drops none (it does in the next two tests)
    assert triples(res.table.to_pylist()) == [
        ("O>O->X", "a1", "a1e2"),
        ("O>O->X", "a2", "a2e1"),
        ("O>O->X", "b1", "b1e1"),
        ("X->O>X->X", "a3e1", "a3e2"),
        ("X->O>X->X", "c1e1", "c1e2"),
        ("X->O>X->X", "c2e2", "c2e1"),
    ]
    assert res.rejects == Counter(duplicate_chosen=7)
    assert res.funnel == {
        "candidates": 13,
        "candidates O>O->X": 3,
        "candidates X->O>X->X": 3,
        "candidates X->O>X": 3,
        "candidates O>X": 2,
        "candidates O>X->X": 2,
        "pairs": 6,
        "pairs O>O->X": 3,
        "pairs X->O>X->X": 3,
        "pairs X->O>X": 0,
        "pairs O>X": 0,
        "pairs O>X->X": 0,
    }
    assert res.by_family == Counter({"O>O->X": 3, "X->O>X->X": 3})
    DpoSchema.validate(res.table.to_pandas())


def test_x_o_over_x_x_pairs_expansions_of_one_simple_cot():
    """Chosen and rejected continue the same wrong simple CoT, so they share its prefix (LPT groups by it).

    Question QC: X c1 -> X->O c1e1, c1e3, X->X c1e2; X c2 -> X->X c2e1 only. The old rule paired across
    simple CoTs: (c1e1, c2e1) and (c1e3, c2e1) too.
    """
    qs, ss, ls = tables(
        [question(QC)],
        [simple("c1", QC, "X"), simple("c2", QC, "X")],
        [
            long("c1e1", "c1", QC, "X->O", thought="c1 thought. Wait, it is B"),
            long("c1e2", "c1", QC, "X->X", thought="c1 thought. Hmm, it is D"),
            long("c1e3", "c1", QC, "X->O", thought="c1 thought. Alternatively, B"),
            long("c2e1", "c2", QC, "X->X", thought="c2 thought. Wait, D"),
        ],
    )[:3]
    cands = dpo_candidates(qs, ss, ls, ["X->O>X->X"])
    assert triples(cands) == [("X->O>X->X", "c1e1", "c1e2"), ("X->O>X->X", "c1e3", "c1e2")]
    parent = {r["trace_id"]: r["cot_id"] for r in ls.to_pylist()}
    for r in cands:
        assert parent[r["chosen_id"]] == parent[r["rejected_id"]] == hid("c1")
        assert r["chosen"].startswith("<think> c1 thought.") and r["rejected"].startswith("<think> c1 thought.")
    res = build_dpo(qs, ss, ls, DpoPairsSettings(rules=["X->O>X->X"]))
    assert triples(res.table.to_pylist()) == [("X->O>X->X", "c1e1", "c1e2")]  # c1e2 is rejected once
    assert res.rejects == Counter(duplicate_rejected=1)


def test_rule_order_decides_which_duplicate_survives():
    res = build_dpo(*crafted_traces(), DpoPairsSettings(rules=["X->O>X", "O>X"]))
    # a3 is rejected first by a3e1, so (a1, a3) and (a2, a3) go
    assert triples(res.table.to_pylist()) == [
        ("X->O>X", "a3e1", "a3"),
        ("X->O>X", "c1e1", "c1"),
        ("X->O>X", "c2e2", "c2"),
    ]
    assert res.rejects == Counter(duplicate_rejected=2)


def test_dedup_is_on_text_not_id():
    same = "I count two squares."
    qs, ss, ls = tables(
        [question(QA)],
        [simple("a1", QA, "O", thought=same), simple("a2", QA, "O", thought=same + "  ")],
        [long("a1e1", "a1", QA, "O->X"), long("a2e1", "a2", QA, "O->X")],
    )[:3]
    assert len(dpo_candidates(qs, ss, ls, ["O>O->X"])) == 2
    res = build_dpo(qs, ss, ls, DpoPairsSettings(rules=["O>O->X"]))
    assert triples(res.table.to_pylist()) == [("O>O->X", "a1", "a1e1")]  # a2's target is a1's, stripped
    assert res.rejects == Counter(duplicate_chosen=1)


def test_pair_texts_categories_and_keys():
    rows = {
        (r["rule"], r["chosen_id"].rstrip("0"), r["rejected_id"].rstrip("0")): r
        for r in dpo_candidates(*crafted_traces(), DpoPairsSettings().rules)
    }
    qa = rows[("O>X->X", "a1", "a3e2")]
    assert qa["chosen"] == "<think> simple thought a1 </think> <answer> (B) </answer>"
    assert qa["rejected"] == "<think> long thought a3e2 Wait, more </think> <answer> (D) </answer>"  # its own answer
    assert (qa["chosen_category"], qa["rejected_category"]) == ("O", "X->X")
    assert qa["call_keys"] == ["key-a1", "key-a3", "key-a3e2"]
    assert (qa["split"], qa["stage"], qa["family"]) == ("stage1", 1, "counting")
    qb = rows[("O>O->X", "b1", "b1e1")]
    assert qb["chosen"].endswith("<answer> B. </answer>")  # QB asks for "X."
    qc = rows[("X->O>X", "c2e2", "c2")]
    assert qc["chosen"].endswith("<answer> two </answer>") and qc["rejected"].endswith("<answer> (C) </answer>")
    assert (qc["split"], qc["family"], qc["chosen_category"], qc["rejected_category"]) == (
        "stage2",
        "chain",
        "X->O",
        "X",
    )
    ids = [r["pair_id"] for r in rows.values()]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_dpo_schema_rejects_a_repeated_chosen_and_a_bad_target():
    table = build_dpo(*crafted_traces(), DpoPairsSettings()).table
    rows = table.to_pylist()
    repeated = rows + [{**rows[0], "pair_id": "e" * 32, "rejected": target_text("another wrong try", "(D)")}]
    with pytest.raises(pandera.errors.SchemaError, match="chosen_and_rejected_unique_and_different"):
        DpoSchema.validate(pa.Table.from_pylist(repeated, schema=table.schema).to_pandas())
    broken = [{**rows[0], "chosen": rows[0]["chosen"].replace(" </think>", "")}, *rows[1:]]
    with pytest.raises(pandera.errors.SchemaError):
        DpoSchema.validate(pa.Table.from_pylist(broken, schema=table.schema).to_pandas())


# --- SFT ---------------------------------------------------------------------------------------


def pool_of(sizes):
    """sizes[i] simple O traces for question i, of distinct lengths."""
    qids = [f"{i:02x}".ljust(32, "d") for i in range(len(sizes))]
    ss = [
        simple(f"{i:02x}{j:03x}", qid, "O", thought="x" * (j + 1))
        for i, (qid, n) in enumerate(zip(qids, sizes))
        for j in range(n)
    ]
    return [question(q) for q in qids], ss


@pytest.mark.parametrize(
    "sizes, fraction, drawn",
    [
        # 25 traces: total floor(12.5) = 12, quota 12 // 3 = 4 (the old ceil gave 13 and quota 5: 15)
        ((10, 8, 7), 0.5, (4, 4, 4)),
        # total floor(7.8) = 7, quota 2: 2 + 2 + 1, the 2 left filled from the first question's 8 left
        ((10, 2, 1), 0.6, (4, 2, 1)),
        ((30,), 0.1, (3,)),  # 0.1 * 30 is 3.0000000000000004 in floats: total 3
        ((100,), 0.29, (29,)),  # 0.29 * 100 is 28.999999999999996 in floats: still 29, not 28
        ((9,), 0.1, (0,)),  # LPT's int(0.9) = 0: nothing (the old ceil kept one)
        ((10, 0, 10), 0.1, (1, 0, 1)),  # total 2 over the 2 questions that have a pool
    ],
)
def test_pool_total_is_the_fraction_rounded_down(sizes, fraction, drawn):
    qs, ss = pool_of(sizes)
    res = sft(qs, ss, fraction=fraction)
    per_q = Counter(res.table["question_id"].to_pylist())
    assert tuple(per_q[q["question_id"]] for q in qs) == drawn
    assert res.funnel["pool"] == sum(sizes) and res.funnel["pool_drawn"] == sum(drawn)


def test_pool_total_is_exact_when_the_quota_rounds_to_zero():
    """100 questions x 5 O traces at 10 %: exactly 50 (LPT's int(500 * 0.1)); the old code kept 100, one each.

    The quota 50 // 100 = 0 is raised to min_per_question = 1 as far as the total allows: 50 questions get one.
    """
    qs, ss = pool_of((5,) * 100)
    res = sft(qs, ss, fraction=0.1)
    per_q = Counter(res.table["question_id"].to_pylist())
    assert res.table.num_rows == res.funnel["pool_drawn"] == 50
    assert len(per_q) == 50 and set(per_q.values()) == {1}


def test_a_raised_quota_goes_round_by_round_to_a_uniform_sample_of_questions():
    """10 questions x 5 traces at 30 %, min_per_question 2: total 15, so every question gets one, 5 get two.

    (The old code gave every question 2: 20.) Which 5 get a second is uniform: over 300 seeds each question's
    frequency has standard deviation sqrt(0.25 / 300) = 0.029; 4 of them is the tolerance.
    """
    qs, ss = pool_of((5,) * 10)
    tabs = tables(qs, ss)
    n, second = 300, Counter()
    for seed in range(n):
        per_q = Counter(
            build_sft(*tabs, SftDataSettings(fraction=0.3, min_per_question=2, seed=seed)).table["question_id"]
        )
        assert sorted(per_q.values()) == [1] * 5 + [2] * 5 and len(per_q) == 10
        second.update(str(q) for q, c in per_q.items() if c == 2)
    for q in qs:
        assert abs(second[q["question_id"]] / n - 0.5) < 4 * math.sqrt(0.25 / n), second[q["question_id"]]


def test_the_remainder_is_filled_by_rank_weight():
    """Two questions with 3 and 1 traces at 75 %: total 3, quota 1 each, then one more from the first question.

    The first question's draw takes rank 0, 1, 2 (weights 1, 1/2, 1/4) with p = 4/7, 2/7, 1/7; the fill then
    takes one of the other two in proportion to weight. So a rank is left out with probability
    P(out 2) = 4/7 * 2/3 + 2/7 * 4/5 = 0.6095, P(out 1) = 4/7 * 1/3 + 1/7 * 2/3 = 0.2857 and
    P(out 0) = 2/7 * 1/5 + 1/7 * 1/3 = 0.1048 (a uniform fill, as LPT's, would leave out rank 2 with p 3/7).
    Over 2,000 seeds a frequency's standard deviation is at most 0.0110; 4 of them.
    """
    qs, ss = pool_of((3, 1))
    tabs = tables(qs, ss)
    n, out = 2000, Counter()
    for seed in range(n):
        res = build_sft(*tabs, SftDataSettings(fraction=0.75, seed=seed))
        assert Counter(res.table["question_id"].to_pylist()) == {qs[0]["question_id"]: 2, qs[1]["question_id"]: 1}
        kept = {int(t[2:5]) for t in res.table["trace_id"].to_pylist() if t.startswith("00")}
        (left,) = {0, 1, 2} - kept  # trace j of question 0 is "00" + j in 3 hex digits, j + 1 long: rank 2 - j
        out[2 - left] += 1
    for rank, p in [(2, 4 / 7 * 2 / 3 + 2 / 7 * 4 / 5), (1, 4 / 7 / 3 + 1 / 7 * 2 / 3), (0, 2 / 7 / 5 + 1 / 7 / 3)]:
        assert abs(out[rank] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (rank, out[rank] / n, p)


def test_rank_weights_by_length_with_ties_by_id():
    ss = [
        simple("a1", QA, "O", thought="x" * 5),
        simple("a2", QA, "O", thought="x" * 20),
        simple("a3", QA, "O", thought="x" * 10),
    ]
    ls = [long("a1e1", "a1", QA, "O->O", thought="y" * 10), long("a2e1", "a2", QA, "O->O", thought="y" * 30)]
    res = sft([question(QA)], ss, ls, fraction=1.0)
    weights = {r["trace_id"].rstrip("0"): r["weight"] for r in res.table.to_pylist()}
    # lengths 30, 20, 10, 10, 5: the two 10s rank by id, a1e1 < a3
    assert weights == {"a2e1": 1.0, "a2": 0.5, "a1e1": 0.25, "a3": 0.125, "a1": 0.0625}
    assert res.by_family == Counter({"O": 3, "O->O": 2})


def test_the_remainder_goes_by_weight_not_to_questions_in_turn():
    """Questions of 3 and 2 traces at 60 %: total 3, quota 3 // 2 = 1, then one more by weight.

    After the quota the first question has two traces left, of weight 0.75, 1.25 or 1.5 in all (its draw
    took rank 0, 1 or 2: p 4/7, 2/7, 1/7); the second has one, of weight 0.5 or 1 (p 2/3, 1/3). The fill
    goes to the first with probability E[r0 / (r0 + r1)] = 0.5992; a quota rounded up, whose second round
    goes to a uniform question, would give 0.5. Over 2,000 seeds the standard deviation is 0.011; 4 of them.
    """
    qs, ss = pool_of((3, 2))
    tabs = tables(qs, ss)
    p = sum(
        p0 * p1 * r0 / (r0 + r1)
        for r0, p0 in [(0.75, 4 / 7), (1.25, 2 / 7), (1.5, 1 / 7)]
        for r1, p1 in [(0.5, 2 / 3), (1, 1 / 3)]
    )
    n = 2000
    first = sum(
        Counter(build_sft(*tabs, SftDataSettings(fraction=0.6, seed=seed)).table["question_id"].to_pylist())[
            qs[0]["question_id"]
        ]
        == 2
        for seed in range(n)
    )
    assert abs(p - 0.5992) < 1e-4 and abs(first / n - p) < 4 * math.sqrt(p * (1 - p) / n), first / n


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_frequencies_for_a_quota_of_one(seed):
    """4,000 questions of 4 traces each, quota 1: rank r is drawn with probability 0.5**r / 1.875.

    Each question draws from its own generator (seed, question id), so these are 4,000 independent
    draws; a frequency's standard deviation is sqrt(p (1 - p) / 4000) <= 0.0079, and 4 of them
    (about 1 in 16,000 for a true p) is the tolerance.
    """
    n = 4000
    qids = [f"{i:08x}".ljust(32, "e") for i in range(n)]
    ss = [simple(f"{i:08x}{r}", qid, "O", thought="x" * (40 - 10 * r)) for i, qid in enumerate(qids) for r in range(4)]
    res = sft([question(q) for q in qids], ss, fraction=0.25, seed=seed)  # total 4000, quota 1, nothing to fill
    assert res.funnel["pool_drawn"] == n and len(set(res.table["question_id"].to_pylist())) == n
    ranks = Counter(int(t[8]) for t in res.table["trace_id"].to_pylist())  # the digit after the question number
    for r in range(4):
        p = 0.5**r / 1.875
        assert abs(ranks[r] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (r, ranks[r] / n, p)


def rank_weight(trace, traces, length):
    """0.5 ** (the X->O trace's rank among its question's by `length`, longest first, ties by id)."""
    same = [t for t in traces if t["question_id"] == trace["question_id"]]
    return 0.5 ** sorted(same, key=lambda t: (-length(t), t["trace_id"])).index(trace)


def test_x_to_o_matches_the_pool_draw():
    qs, ss = pool_of((10, 10, 10))  # fraction 0.1: one per question, 3 drawn
    xo = [long(f"f{i}", "e", qs[i % 3]["question_id"], "X->O", added_chars=10 + i) for i in range(8)]
    res = sft(qs, ss, xo, fraction=0.1)
    assert (res.funnel["pool_drawn"], res.funnel["x_to_o"], res.funnel["x_to_o_drawn"]) == (3, 8, 3)
    rows = res.table.to_pylist()
    assert [r["category"] for r in rows] == ["O"] * 3 + ["X->O"] * 3
    assert len({r["question_id"] for r in rows[3:]}) == 3  # quota 3 // 3 = 1 each
    by_id = {t["trace_id"]: t for t in xo}
    for r in rows[3:]:  # the weight each was drawn with: 0.5 ** rank by added length in its question
        assert r["weight"] == rank_weight(by_id[r["trace_id"]], xo, lambda t: t["added_chars"])
    few = sft(qs, ss, xo[:2], fraction=0.1)
    assert few.funnel["x_to_o_drawn"] == 2 and few.by_family == Counter({"O": 3, "X->O": 2})


def test_x_to_o_gets_an_equal_quota_per_question():
    """4 questions of 30 pool traces at 10 %: 12 drawn, so 12 X->O, 12 // 4 = 3 from each question.

    The first question's 20 X->O added 1,000+ characters, the others' 10+: the old global draw by added
    length took nearly all 12 from the first question.
    """
    qs, ss = pool_of((30,) * 4)
    xo = [long(f"f0{i:02x}", "e", qs[0]["question_id"], "X->O", added_chars=1000 + i) for i in range(20)]
    xo += [
        long(f"f{q}{i:02x}", "e", qs[q]["question_id"], "X->O", added_chars=10 + i) for q in (1, 2, 3) for i in range(5)
    ]
    for seed in range(5):
        res = sft(qs, ss, xo, fraction=0.1, seed=seed)
        rows = [r for r in res.table.to_pylist() if r["category"] == "X->O"]
        assert res.funnel["pool_drawn"] == res.funnel["x_to_o_drawn"] == 12
        assert Counter(r["question_id"] for r in rows) == {q["question_id"]: 3 for q in qs}


def test_x_to_o_draw_is_weighted_by_the_rank_of_added_length():
    """One pool trace drawn, so one X->O of three with 100, 200, 700 added chars: ranks 2, 1, 0, weights
    1/4, 1/2, 1, so p = 1/7, 2/7, 4/7 (the old draw by added length itself gave 0.1, 0.2, 0.7).

    Over 2,000 seeds the standard deviation of a frequency is at most sqrt(0.25 / 2000) = 0.0112; 4 of them.
    """
    qs, ss = [question(QA)], [simple("a1", QA, "O")]
    ls = [
        long("a9e1", "a9", QA, "X->O", added_chars=100),
        long("a9e2", "a9", QA, "X->O", added_chars=200),
        long("a9e3", "a9", QA, "X->O", added_chars=700),
    ]
    tabs = tables(qs, ss, ls)
    n, drawn = 2000, Counter()
    for seed in range(n):
        rows = build_sft(*tabs, SftDataSettings(fraction=1.0, seed=seed)).table.to_pylist()
        drawn += Counter((r["trace_id"].rstrip("0"), r["weight"]) for r in rows if r["category"] == "X->O")
    assert set(drawn) == {("a9e1", 0.25), ("a9e2", 0.5), ("a9e3", 1.0)}
    for name, w, p in [("a9e1", 0.25, 1 / 7), ("a9e2", 0.5, 2 / 7), ("a9e3", 1.0, 4 / 7)]:
        assert abs(drawn[name, w] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (name, drawn[name, w] / n)


def test_sft_is_deterministic_in_the_seed_and_not_in_row_order():
    qs, ss = pool_of((12, 9, 7))
    xo = [long(f"f{i:02x}", "e", qs[i % 3]["question_id"], "X->O", added_chars=5 + i) for i in range(20)]
    first = sft(qs, ss, xo, fraction=0.2, seed=7).table
    assert first.equals(sft(qs, ss, xo, fraction=0.2, seed=7).table)
    shuffled = random.Random(3)
    ss2, xo2 = ss[:], xo[:]
    shuffled.shuffle(ss2), shuffled.shuffle(xo2)
    assert first.equals(sft(list(reversed(qs)), ss2, xo2, fraction=0.2, seed=7).table)
    others = [sft(qs, ss, xo, fraction=0.2, seed=s).table["trace_id"].to_pylist() for s in range(8, 13)]
    assert any(o != first["trace_id"].to_pylist() for o in others)  # the seed does matter


def test_sft_rows_carry_canonical_answers_targets_and_lineage():
    qs = [
        question(QA, answer_format="(X)"),
        question(QB, answer_format="X."),
        question(QC, stage=2, family="combine", answer_format="text"),
    ]
    ss = [simple("a1", QA, "O", thought="  two squares  "), simple("b1", QB, "O", answer="B"), simple("c1", QC, "X")]
    ls = [long("c1e1", "c1", QC, "X->O", added_chars=33)]
    fs = [four("f1", QC)]
    res = sft(qs, ss, ls, fs, fraction=1.0)
    rows = {r["trace_id"].rstrip("0"): r for r in res.table.to_pylist()}
    assert rows["a1"]["target"] == "<think> two squares </think> <answer> (B) </answer>"
    assert rows["a1"]["thought"] == "two squares" and rows["a1"]["call_keys"] == ["key-a1"]
    assert rows["b1"]["answer"] == "B." and rows["b1"]["split"] == "stage1"
    assert rows["c1e1"]["answer"] == "two" and rows["c1e1"]["weight"] == 1.0  # rank 0 of its question's X->O
    assert rows["c1e1"]["call_keys"] == ["key-c1", "key-c1e1"] and rows["c1e1"]["category"] == "X->O"
    assert (rows["c1e1"]["split"], rows["c1e1"]["family"]) == ("stage2", "combine")
    assert rows["f1"]["category"] == "four_phase" and rows["f1"]["weight"] == 1.0
    assert rows["f1"]["target"] == "<think> four phases f1 </think> <answer> two </answer>"
    assert rows["f1"]["call_keys"] == ["key-f1"]
    assert rows["a1"]["system_prompt"] == qs[0]["system_prompt"] and rows["a1"]["user_prompt"] == qs[0]["user_prompt"]
    assert "c1" not in rows  # X is never trained on
    for r in rows.values():
        assert TARGET.match(r["target"]) and r["target"] == target_text(r["thought"], r["answer"])
    assert len({r["sft_id"] for r in rows.values()}) == 4
    SftSchema.validate(res.table.to_pandas())


Q0, QH, Q1, QN = "a0" * 16, "a5" * 16, "a1" * 16, "a7" * 16  # pass rate 0, 0.5, 1, no difficulty row


@pytest.mark.parametrize(
    "subset, kept, rejects",
    [
        ("none", [], {"four_phase_inconsistent": 1}),
        ("all", ["fa", "fb", "fc", "fd"], {"four_phase_inconsistent": 1}),
        (
            "pass_rate_below_1",
            ["fa", "fb"],
            {"four_phase_inconsistent": 1, "four_phase_no_difficulty": 1, "four_phase_not_pass_rate_below_1": 1},
        ),
        (
            "pass_rate_zero",
            ["fa"],
            {"four_phase_inconsistent": 1, "four_phase_no_difficulty": 1, "four_phase_not_pass_rate_zero": 2},
        ),
    ],
)
def test_four_phase_subset_by_pass_rate(subset, kept, rejects):
    qs = [question(q) for q in (Q0, QH, Q1, QN)]
    # consistent traces fa..fd for pass rates 0, 0.5, 1 and none; fe is inconsistent
    fs = [four("fa", Q0), four("fb", QH), four("fc", Q1), four("fd", QN), four("fe", Q0, consistent=False)]
    ds = [difficulty(Q0, 0), difficulty(QH, 2), difficulty(Q1, 4)]
    res = sft(qs, fs=fs, ds=ds, four_phase=subset)
    assert sorted(t.rstrip("0") for t in res.table["trace_id"].to_pylist()) == sorted(kept)
    assert res.rejects == Counter(rejects)
    assert res.funnel["four_phase_consistent"] == 4 and res.funnel["four_phase"] == len(kept)
    SftSchema.validate(res.table.to_pandas())


def test_sft_schema_rejects_a_target_without_its_closing_think():
    qs, ss = pool_of((3,))
    table = sft(qs, ss, fraction=1.0).table
    SftSchema.validate(table.to_pandas())
    rows = table.to_pylist()
    rows[1]["target"] = rows[1]["target"].replace(" </think>", "")
    with pytest.raises(pandera.errors.SchemaError, match="target"):
        SftSchema.validate(pa.Table.from_pylist(rows, schema=table.schema).to_pandas())


# --- RL ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subset, kept, rejects",
    [
        ("all", [Q0, QH, Q1, QN], {}),
        ("pass_rate_below_1", [Q0, QH], {"no_pass_rate": 1, "not_pass_rate_below_1": 1}),
        ("pass_rate_zero", [Q0], {"no_pass_rate": 1, "not_pass_rate_zero": 2}),
    ],
)
def test_rl_joins_pass_rates_and_keeps_the_subset(subset, kept, rejects):
    qs = [question(Q0), question(QH, stage=2, family="chain"), question(Q1, answer_format="text"), question(QN)]
    ds = [difficulty(Q0, 0), difficulty(QH, 2), difficulty(Q1, 4), difficulty("ff" * 16, 1)]  # one for no question
    q, _, _, _, d = tables(qs, diffs=ds)
    res = build_rl(q, d, RlPromptsSettings(subset=subset, rl_holdout=4))  # all four held out
    rows = {r["question_id"]: r for r in res.table.to_pylist()}
    assert list(rows) == kept and res.rejects == Counter(rejects)
    assert res.funnel == {"questions": 4, "held_out": 4, "with_pass_rate": 3, "rows": len(kept)}
    rates = {Q0: 0.0, QH: 0.5, Q1: 1.0}
    for qid, r in rows.items():
        assert r["pass_rate"] == rates[qid] if qid in rates else math.isnan(r["pass_rate"])
        assert r["options"] == ["one", "two", "three", "four"] and (r["gold_letter"], r["gold_text"]) == ("B", "two")
    if QH in rows:
        assert (rows[QH]["split"], rows[QH]["family"]) == ("stage2", "chain")
    if Q1 in rows:
        assert rows[Q1]["answer_format"] == "text"
    RlSchema.validate(res.table.to_pandas())


def test_rl_schema_rejects_a_gold_that_is_not_its_option():
    q, _, _, _, d = tables([question(Q0), question(QH)], diffs=[difficulty(Q0, 0)])
    table = build_rl(q, d, RlPromptsSettings(rl_holdout=2)).table
    RlSchema.validate(table.to_pandas())
    rows = table.to_pylist()
    rows[0]["gold_letter"] = "C"
    with pytest.raises(pandera.errors.SchemaError):
        RlSchema.validate(pa.Table.from_pylist(rows, schema=table.schema).to_pandas())


# --- the RL holdout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, rl_holdout, want",
    [
        (100, 0.02, 2),
        (49, 0.02, 0),  # rounded down: a small shard holds out none at 2 %
        (100, 0.29, 29),  # 0.29 * 100 is 28.999999999999996 in floats
        (1000, 0.5, 500),
        (10, 3, 3),
        (2, 5, 2),  # a count beyond the shard holds out all of it
        (10, 0, 0),
    ],
)
def test_holdout_size_for_a_fraction_and_a_count(n, rl_holdout, want):
    assert held_out_count(n, rl_holdout) == want
    ids = [f"{i:04x}".ljust(32, "a") for i in range(n)]
    held = held_out_questions(ids, RlPromptsSettings(rl_holdout=rl_holdout))
    assert len(held) == want and held <= set(ids)


def test_holdout_rejects_what_is_neither_a_fraction_nor_a_count():
    for bad in (1.0, 1.5, -0.1, -1, True, "2"):
        with pytest.raises(ValueError, match="rl_holdout"):
            RlPromptsSettings(rl_holdout=bad)


def test_holdout_is_a_pure_uniform_function_of_ids_count_and_seed():
    """10 ids, 3 held out: each is held out with p 0.3 over seeds; 3,000 seeds give a standard deviation of
    sqrt(0.21 / 3000) = 0.0084, and 4 of them is the tolerance. Order and repeats of the ids do not matter."""
    ids = [f"{i:02x}".ljust(32, "b") for i in range(10)]
    first = held_out_questions(ids, RlPromptsSettings(rl_holdout=3, seed=5))
    assert first == held_out_questions(list(reversed(ids)) + ids[:4], RlPromptsSettings(rl_holdout=3, seed=5))
    assert first == held_out_questions(ids, RlPromptsSettings(rl_holdout=0.3, seed=5))  # 30 % of 10 is the same 3
    n, counts = 3000, Counter()
    for seed in range(n):
        counts.update(held_out_questions(ids, RlPromptsSettings(rl_holdout=3, seed=seed)))
    for q in ids:
        assert abs(counts[q] / n - 0.3) < 4 * math.sqrt(0.21 / n), (q, counts[q] / n)
    # a larger count holds out a superset: each id has one rank per seed
    assert first <= held_out_questions(ids, RlPromptsSettings(rl_holdout=6, seed=5))


def test_rl_is_the_holdout_and_sft_and_dpo_leave_it_out():
    """Crafted traces: QA has 8 traces (3 simple, 5 long), QB 4, QC 6. For each seed, one question is held out:
    it is the one RL prompt, and none of its traces is in SFT or DPO, each counted as rl_holdout."""
    qs, ss, ls = crafted_traces()
    traces = Counter(ss["question_id"].to_pylist() + ls["question_id"].to_pylist())
    sft_traces = Counter(
        r["question_id"] for r in ss.to_pylist() + ls.to_pylist() if r["category"] in ("O", "O->O", "X->O")
    )
    _, _, _, fs, ds = tables()
    seen = set()
    for seed in range(12):
        stage = RlPromptsSettings(rl_holdout=1, seed=seed)
        held = held_out_questions(qs["question_id"].to_pylist(), stage)
        (h,) = held
        seen.add(h)
        rl = build_rl(qs, ds, stage)
        sft_res = build_sft(qs, ss, ls, fs, ds, SftDataSettings(fraction=1.0), held)
        dpo_res = build_dpo(qs, ss, ls, DpoPairsSettings(), held)
        assert rl.table["question_id"].to_pylist() == [h] and rl.rejects == Counter(not_held_out=2)
        assert h not in sft_res.table["question_id"].to_pylist() + dpo_res.table["question_id"].to_pylist()
        assert sft_res.rejects["rl_holdout"] == sft_traces[h] and dpo_res.rejects["rl_holdout"] == traces[h]
        check_rl_disjoint(rl.table, sft_data=sft_res.table, dpo_pairs=dpo_res.table)
        # the other questions still train: every one with a correct trace has SFT rows
        assert set(sft_res.table["question_id"].to_pylist()) == {QA, QB, QC} - held
    assert seen == {QA, QB, QC}  # over the seeds each question is held out at some point


def test_the_disjointness_check_names_the_overlap():
    """The old RL set was every question: it overlaps SFT and DPO, and the check says where."""
    qs, ss, ls = crafted_traces()
    _, _, _, fs, ds = tables()
    everything = build_rl(qs, ds, RlPromptsSettings(rl_holdout=3)).table
    sft_table = build_sft(qs, ss, ls, fs, ds, SftDataSettings(fraction=1.0)).table
    dpo_table = build_dpo(qs, ss, ls, DpoPairsSettings()).table
    with pytest.raises(
        ValueError, match=f"3 question\\(s\\) are both RL prompts and in sft_data, e.g. question_id {QA}"
    ):
        check_rl_disjoint(everything, sft_data=sft_table, dpo_pairs=dpo_table)
    only_qb = everything.filter(pc.equal(everything["question_id"], QB))
    without_qb = sft_table.filter(pc.not_equal(sft_table["question_id"], QB))
    with pytest.raises(
        ValueError, match=f"1 question\\(s\\) are both RL prompts and in dpo_pairs, e.g. question_id {QB}"
    ):
        check_rl_disjoint(only_qb, sft_data=without_qb, dpo_pairs=dpo_table)
