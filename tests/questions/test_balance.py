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
    skips = Counter()
    kept = balance(rows, 0, skips)
    got = Counter(r["answer"] for r in kept)
    assert got == {"1": 2, "2": 2, "3": 2, "red": 1} and skips["gold_balance"] == 9
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)  # order kept
    assert balance(rows, 0, Counter()) == kept  # seeded


def test_count_comparisons_are_balanced_by_which_side_wins():
    def cmp(answer):
        return {"family": "count_comparison", "answer": answer, "spec": json.dumps({"a_things": "cats"})}

    rows = [cmp(SAME_COUNT)] * 6 + [cmp("more cats")] * 2 + [cmp("more dogs")] * 2
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
