"""The bias audit on hand-built question sets whose blind accuracies are worked out by hand."""

import pyarrow as pa

from lgt.questions.audit import _mentions, audit, audit_table, bias_audits, solver_accuracy


def row(family, question, answer, distractors):
    return {"family": family, "question": question, "answer": answer, "distractors": distractors}


def test_a_gold_that_is_always_the_second_smallest_number_is_found_blind():
    # gold 1 among 0, 1, 2, 3 every time: leaving one question out, rank 1 of 4 was gold 3 of 3 times
    # ((3 + 1/4) / 4 = 0.8125) and rank 0 never (0.0625), so the baseline picks the gold every time
    rows = [row("counting", f"How many things {i}?", "1", ["0", "2", "3"]) for i in range(4)]
    (a,) = audit(rows)
    assert a.questions == 4 and a.blind["number_rank"] == 1.0 and a.blind["text"] == 1.0
    assert a.blind["length_rank"] == 0.25  # every option one character long: a four-way tie
    assert a.gold_values == [("1", 4)] and a.best == ("number_rank", 1.0)


def test_balanced_golds_give_no_blind_edge():
    # each of a, b, c, d is gold once and always offered: leaving a question out, its own gold has the lowest
    # rate (0.25 / 4) and the other three tie (1.25 / 4), so the baseline never picks the gold
    texts = ["apple", "bear", "clock", "drum"]
    rows = [row("existence", "Which is in it?", t, [u for u in texts if u != t]) for t in texts]
    (a,) = audit(rows)
    assert a.blind["text"] == 0.0 and not a.over_limit


def test_ties_count_as_a_fair_coin():
    # every option the same length: length_rank values all "rank 0 of 1", four-way tie, 1/4 per question
    rows = [row("relative_position", f"Where is it {i}?", "above", ["below", "right", "lefts"]) for i in range(3)]
    (a,) = audit(rows)
    assert a.blind["length_rank"] == 0.25


def test_mentions_rank_options_by_where_the_question_names_them():
    q = "Are there more red cats or more dogs in the image?"
    opts = ["more dogs", "more red cats", "the same number of each", "there are none of either"]
    assert _mentions(q, opts) == ["mention 2", "mention 1", "absent", "absent"]


def test_a_family_over_the_limit_is_flagged_in_the_table():
    rows = [
        row("count_comparison", f"More a or more b {i}?", "the same number of each", ["more a", "more b", "x"])
        for i in range(120)
    ]
    (a,) = audit(rows)
    assert a.over_limit and "**over 35 %**" in audit_table([a])


def test_a_feature_that_applies_to_some_questions_guesses_at_chance_on_the_rest():
    # two numeric questions (gold always rank 1 of 4: found every time) and two with words (chance, 1/4 each)
    rows = [row("combine", f"How many {i}?", "1", ["0", "2", "3"]) for i in range(2)]
    rows += [row("combine", f"Which two {i}?", "red and blue", ["red and red", "blue", "none"]) for i in range(2)]
    (a,) = audit(rows)
    assert a.blind["number_rank"] == (2 * 1.0 + 2 * 0.25) / 4


def test_the_small_solvers_text_only_pass_is_a_column_per_stage():
    qs = [
        {"question_id": f"q{i}", "stage": 1 + (i >= 3), "family": "counting" if i < 3 else "chain",
         "question": f"How many {i}?", "options": ["0", "1", "2", "3"], "gold_text": "1", "gold_letter": "B"}
        for i in range(5)
    ]  # fmt: skip
    rated = [
        {"question_id": "q0", "family": "counting", "blind_choice": "B"},  # right
        {"question_id": "q1", "family": "counting", "blind_choice": "A"},
        {"question_id": "q2", "family": "counting", "blind_choice": None},  # its call failed: not counted
        {"question_id": "q3", "family": "chain", "blind_choice": ""},  # no answer read: wrong
    ]
    assert solver_accuracy(qs, rated) == {"counting": (1, 2), "chain": (0, 1)}
    tables = bias_audits(pa.Table.from_pylist(qs), pa.Table.from_pylist(rated))
    assert "small solver, text only" in tables[1] and "| 50.0% of 2 |" in tables[1]
    assert "| 0.0% of 1 |" in tables[2]
    assert "small solver" not in bias_audits(pa.Table.from_pylist(qs))[1]  # no blind pass: no column
