"""Per-shard balance of gold kinds, on hand-counted rows."""

import json
from collections import Counter

from lgt.questions.balance import balance, kept_per_kind
from lgt.questions.families import SAME_COUNT, count_distractors


def test_the_cap_is_the_largest_that_keeps_every_kind_within_its_share():
    # 10 ones, 3 twos, 2 threes: a cap of 2 keeps 2 + 2 + 2 = 6 and 2 <= 0.35 * 6 = 2.1; a cap of 3 keeps 8,
    # and 3 > 0.35 * 8 = 2.8
    assert kept_per_kind({"1": 10, "2": 3, "3": 2}) == 2
    assert kept_per_kind({"1": 5, "2": 5, "3": 5, "4+": 5}) == 5  # already balanced: nothing dropped
    assert kept_per_kind({"same": 9}) == 0  # one kind only: the gold is always the same answer


def test_balance_drops_the_surplus_and_counts_it():
    rows = [{"family": "counting", "answer": "1", "i": i} for i in range(10)]
    rows += [{"family": "counting", "answer": a, "i": 10 + i} for i, a in enumerate("22233")]
    rows += [{"family": "attribute", "answer": "red", "i": 99}]
    rows = [{**r, "question_id": f"q{r['i']}"} for r in rows]
    skips = Counter()
    kept = balance(rows, 0, skips)
    got = Counter(r["answer"] for r in kept)
    assert got == {"1": 2, "2": 2, "3": 2, "red": 1} and skips["gold_balance"] == 9
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)  # order kept
    assert balance(rows, 0, Counter()) == kept  # seeded


def test_an_edit_elsewhere_in_the_shard_keeps_or_drops_one_question_more_never_redraws_the_rest():
    # 12 ones and 6 each of twos, threes, 4+: the cap is 9 (9 <= 0.35 * 27 = 9.45; 10 > 0.35 * 28 = 9.8), so 9
    # of the 12 ones are kept, the lowest by the seeded hash
    rows = [
        {"family": "counting", "answer": a, "question_id": f"{a}-{i}"}
        for a in "1234"
        for i in range(12 if a == "1" else 6)
    ]
    assert kept_per_kind({"1": 12, "2": 6, "3": 6, "4+": 6}) == 9
    before = {r["question_id"] for r in balance(rows, 0, Counter())}
    assert sum(q.startswith("1-") for q in before) == 9
    # one image edited: one of the 4+ questions becomes a new one (a new id); the ones kept stay the same
    edited = [*rows[:-1], {"family": "counting", "answer": "4", "question_id": "4-new"}]
    after = {r["question_id"] for r in balance(edited, 0, Counter())}
    assert {q for q in before if q.startswith("1-")} == {q for q in after if q.startswith("1-")}
    assert after - before == {"4-new"} and before - after == {"4-5"}


def test_count_comparisons_are_balanced_by_which_side_wins():
    def cmp(answer):
        return {"family": "count_comparison", "answer": answer, "spec": json.dumps({"a_things": "cats"})}

    rows = [cmp(SAME_COUNT)] * 6 + [cmp("more cats")] * 2 + [cmp("more dogs")] * 2
    rows = [{**r, "question_id": f"q{i}"} for i, r in enumerate(rows)]
    kept = balance(rows, 0, Counter())
    assert Counter(r["answer"] for r in kept) == {SAME_COUNT: 2, "more cats": 2, "more dogs": 2}


def test_small_counts_are_offered_zero_to_three_whatever_the_gold():
    import random

    for n in range(4):
        for seed in range(5):
            assert sorted([str(n), *count_distractors(random.Random(seed), n)]) == ["0", "1", "2", "3"]
    windows = {tuple(sorted(int(x) for x in count_distractors(random.Random(s), 7))) for s in range(40)}
    # gold 7 at every rank of a four-count window: 4-6, 5-6 + 8, 6 + 8-9, 8-10
    assert windows == {(4, 5, 6), (5, 6, 8), (6, 8, 9), (8, 9, 10)}
