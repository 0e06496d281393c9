"""SFT sampling, DPO pair rules and RL prompts on hand-built trace tables, against hand-worked answers."""

import math
import random
from collections import Counter

import pandas as pd
import pandera.errors
import pyarrow as pa
import pytest

from lgt.datasets.training_sets import (
    build_dpo,
    build_rl,
    build_sft,
    canonical_answer,
    dpo_candidates,
    target_text,
    weighted_sample,
)
from lgt.recipe import DpoStage, RlStage, SftStage
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


def sft(qs=(), ss=(), ls=(), fs=(), ds=(), **stage):
    return build_sft(*tables(qs, ss, ls, fs, ds), SftStage(**stage))


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
    ("X->O>X->X", "c1e1", "c1e2"),
    ("X->O>X->X", "c1e1", "c2e1"),
    ("X->O>X->X", "c2e2", "c1e2"),
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
    cands = dpo_candidates(*crafted_traces(), DpoStage().rules)
    assert triples(cands) == ALL_CANDIDATES
    # every trace has its own thought, so texts differ exactly where ids do
    assert len({(r["chosen"], r["rejected"]) for r in cands}) == len(cands) == 15


def test_dedup_keeps_the_first_pair_per_chosen_then_per_rejected():
    res = build_dpo(*crafted_traces(), DpoStage())
    # chosen dedup keeps the first use of a1, a2, b1, a3e1, c1e1, c2e2 (pairs 1-5 and 7 above);
    # rejected dedup then drops (c2e2, c1e2): c1e2 was already rejected by c1e1
    assert triples(res.table.to_pylist()) == [
        ("O>O->X", "a1", "a1e2"),
        ("O>O->X", "a2", "a2e1"),
        ("O>O->X", "b1", "b1e1"),
        ("X->O>X->X", "a3e1", "a3e2"),
        ("X->O>X->X", "c1e1", "c1e2"),
    ]
    assert res.rejects == Counter(duplicate_chosen=9, duplicate_rejected=1)
    assert res.funnel == {
        "candidates": 15,
        "candidates O>O->X": 3,
        "candidates X->O>X->X": 5,
        "candidates X->O>X": 3,
        "candidates O>X": 2,
        "candidates O>X->X": 2,
        "pairs": 5,
        "pairs O>O->X": 3,
        "pairs X->O>X->X": 2,
        "pairs X->O>X": 0,
        "pairs O>X": 0,
        "pairs O>X->X": 0,
    }
    assert res.by_family == Counter({"O>O->X": 3, "X->O>X->X": 2})
    DpoSchema.validate(res.table.to_pandas())


def test_rule_order_decides_which_duplicate_survives():
    res = build_dpo(*crafted_traces(), DpoStage(rules=["X->O>X", "O>X"]))
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
    res = build_dpo(qs, ss, ls, DpoStage(rules=["O>O->X"]))
    assert triples(res.table.to_pylist()) == [("O>O->X", "a1", "a1e1")]  # a2's target is a1's, stripped
    assert res.rejects == Counter(duplicate_chosen=1)


def test_pair_texts_categories_and_keys():
    rows = {
        (r["rule"], r["chosen_id"].rstrip("0"), r["rejected_id"].rstrip("0")): r
        for r in dpo_candidates(*crafted_traces(), DpoStage().rules)
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
    table = build_dpo(*crafted_traces(), DpoStage()).table
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
    "sizes, fraction, min_per_question, drawn",
    [
        ((10, 8, 7), 0.1, 1, (1, 1, 1)),  # 25 traces: total ceil(2.5) = 3, quota ceil(3 / 3) = 1
        ((10, 8, 7), 0.5, 1, (5, 5, 5)),  # total ceil(12.5) = 13, quota ceil(13 / 3) = 5
        ((10, 2, 1), 0.6, 1, (3, 2, 1)),  # total ceil(7.8) = 8, quota 3; small questions give all they have
        ((10, 8, 7), 0.1, 2, (2, 2, 2)),  # quota max(2, 1)
        ((30,), 0.1, 1, (3,)),  # 0.1 * 30 is 3.0000000000000004 in floats: still total 3, not 4
        ((10, 0, 10), 0.1, 1, (1, 0, 1)),  # total 2 over the 2 questions that have a pool
    ],
)
def test_pool_quota(sizes, fraction, min_per_question, drawn):
    qs, ss = pool_of(sizes)
    res = sft(qs, ss, fraction=fraction, min_per_question=min_per_question)
    per_q = Counter(res.table["question_id"].to_pylist())
    assert tuple(per_q[q["question_id"]] for q in qs) == drawn
    assert res.funnel["pool"] == sum(sizes) and res.funnel["pool_drawn"] == sum(drawn)


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
    res = sft([question(q) for q in qids], ss, fraction=0.1, seed=seed)  # total 1600, quota max(1, ceil(0.4)) = 1
    assert res.funnel["pool_drawn"] == n
    ranks = Counter(int(t[8]) for t in res.table["trace_id"].to_pylist())  # the digit after the question number
    for r in range(4):
        p = 0.5**r / 1.875
        assert abs(ranks[r] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (r, ranks[r] / n, p)


def test_x_to_o_matches_the_pool_draw():
    qs, ss = pool_of((10, 10, 10))  # fraction 0.1: one per question, 3 drawn
    xo = [long(f"f{i}", "e", qs[i % 3]["question_id"], "X->O") for i in range(8)]
    res = sft(qs, ss, xo, fraction=0.1)
    assert (res.funnel["pool_drawn"], res.funnel["x_to_o"], res.funnel["x_to_o_drawn"]) == (3, 8, 3)
    rows = res.table.to_pylist()
    assert [r["category"] for r in rows] == ["O"] * 3 + ["X->O"] * 3
    assert all(r["weight"] == 10.0 for r in rows[3:])  # the added_chars each was drawn with
    few = sft(qs, ss, xo[:2], fraction=0.1)
    assert few.funnel["x_to_o_drawn"] == 2 and few.by_family == Counter({"O": 3, "X->O": 2})


def test_x_to_o_draw_is_weighted_by_added_chars():
    """One pool trace drawn, so one X->O of three with 100, 200, 700 added chars: p = 0.1, 0.2, 0.7.

    Over 2,000 seeds the standard deviation of a frequency is at most sqrt(0.21 / 2000) = 0.0102; 4 of them.
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
        rows = build_sft(*tabs, SftStage(seed=seed)).table.to_pylist()
        drawn += Counter(r["trace_id"].rstrip("0") for r in rows if r["category"] == "X->O")
    for name, p in [("a9e1", 0.1), ("a9e2", 0.2), ("a9e3", 0.7)]:
        assert abs(drawn[name] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (name, drawn[name] / n)


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
    assert rows["c1e1"]["answer"] == "two" and rows["c1e1"]["weight"] == 33.0
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
    res = build_rl(q, d, RlStage(subset=subset))
    rows = {r["question_id"]: r for r in res.table.to_pylist()}
    assert list(rows) == kept and res.rejects == Counter(rejects)
    assert res.funnel == {"questions": 4, "with_pass_rate": 3, "rows": len(kept)}
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
    table = build_rl(q, d, RlStage()).table
    RlSchema.validate(table.to_pandas())
    rows = table.to_pylist()
    rows[0]["gold_letter"] = "C"
    with pytest.raises(pandera.errors.SchemaError):
        RlSchema.validate(pa.Table.from_pylist(rows, schema=table.schema).to_pandas())
