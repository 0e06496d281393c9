"""The one answer reader (`lgt.answers`): the table of forms, its guards, judge verdicts, the verifier's view."""

import random
import string

import pytest

from lgt.answers import VERDICTS, choice_in_answer, judge_verdict, read_choice
from lgt.prompts import load_prompt
from lgt.questions.verify import verifier_view
from lgt.traces.parse import four_phase_structure

COLOURS = ["red", "blue", "green", "yellow"]
SHADES = ["red", "dark red", "blue", "green"]
YES_NO = ["yes", "no"]
NONE_OPTION = ["a cat", "a dog", "none of them", "both"]


def block(text: str) -> str:
    return f"<think>I look at the image.</think><answer>{text}</answer>"


# (reply, options, expected index or None); each row is one form or one guard of the table
READ = [
    # ---- letters, whole span
    (block("(B)"), COLOURS, 1),
    (block("B"), COLOURS, 1),
    (block("B."), COLOURS, 1),
    (block("B)"), COLOURS, 1),
    (block("[B]"), COLOURS, 1),
    (block(" b "), COLOURS, 1),
    (block("**B**"), COLOURS, 1),
    (block("\\boxed{B}"), COLOURS, 1),
    (block("(B)."), COLOURS, 1),
    (block("Option B"), COLOURS, 1),  # read as wrong before
    (block("option (b)"), COLOURS, 1),
    (block("Choice C"), COLOURS, 2),
    # ---- a letter and its option's text
    (block("(B) blue"), COLOURS, 1),
    (block("B. blue"), COLOURS, 1),
    (block("B) blue"), COLOURS, 1),
    (block("B: blue"), COLOURS, 1),  # read as wrong before
    (block("B, blue"), COLOURS, 1),  # read as wrong before
    (block("B - blue"), COLOURS, 1),
    (block("Option B: Blue."), COLOURS, 1),
    (block("(B) dark red"), SHADES, 1),
    # ---- the option's text
    (block("blue"), COLOURS, 1),
    (block("Blue."), COLOURS, 1),
    (block("The blue"), COLOURS, 1),  # a leading article is dropped
    (block('"blue"'), COLOURS, 1),
    (block("dark red"), SHADES, 1),
    (block("none of them"), NONE_OPTION, 2),  # a negation word that is an option's text is that option
    (block("no"), YES_NO, 1),
    # ---- answer statements
    ("Answer: B", COLOURS, 1),
    ("The answer is B", COLOURS, 1),
    ("**Answer:** B", COLOURS, 1),
    ("The answer is: (b)", COLOURS, 1),
    ("A square is red. Answer: D", COLOURS, 3),
    ("The answer is (C).", COLOURS, 2),
    ("The answer is blue.", COLOURS, 1),
    ("The answer is B because the square is blue.", COLOURS, 1),
    ("The answer is B because the square is red.", COLOURS, 1),  # the reason is not read
    ("Answer: (A). Earlier I said the answer is (B), but Answer: C", COLOURS, 2),  # the last statement
    ("The final answer is:\n(D)", COLOURS, 3),  # on the next line
    (block("The answer is (B)."), COLOURS, 1),
    # ---- scanning inside a block
    (block("It is the Yellow one."), COLOURS, 3),
    (block("I think it is B"), COLOURS, 1),
    (block("the dark red one"), SHADES, 1),  # "red" inside "dark red" is not "red"
    (block("the red one"), SHADES, 0),
    (block("It is no."), YES_NO, 1),  # "no" is an option here, not a negation
    (block("It is Vitamin C"), ["Vitamin C", "Vitamin D", "iron", "zinc"], 0),  # a letter inside an option's text
    # ---- where the answer is
    ("<think>x</think><answer>(B)</answer>", COLOURS, 1),
    ("<answer>(A)</answer> then <answer>(C)</answer>", COLOURS, 2),  # the last block
    ("<think>maybe (A)</think><answer>(D", COLOURS, 3),  # an unclosed final block was cut off
    ("<think>The answer is (A).</think><answer>green</answer>", COLOURS, 2),  # not what the thought said
    ("<think>I pick <answer>(A)</answer></think> The answer is C.", COLOURS, 2),
    ("<think>I pick <answer>(A)</answer></think>", COLOURS, None),  # an answer only inside the thought
    ("<think>The answer is (A).", COLOURS, None),  # the thought never closed: nothing was answered
    ("B", COLOURS, 1),
    ("blue.", COLOURS, 1),
    ("(B) blue", COLOURS, 1),
    # ---- negations
    (block("not green"), COLOURS, None),  # read "green" before
    ("not green", COLOURS, None),
    (block("not B"), COLOURS, None),
    (block("B is wrong"), COLOURS, None),
    (block("It isn't red"), COLOURS, None),
    (block("none of them"), COLOURS, None),  # not an option here
    (block("neither red nor blue"), COLOURS, None),
    (block("anything except red"), COLOURS, None),
    ("The answer is not clear.", COLOURS, None),
    # ---- two or more options named
    (block("A or B"), COLOURS, None),
    (block("(A) or (B)"), COLOURS, None),
    (block("B and C"), COLOURS, None),
    (block("A, B"), COLOURS, None),
    (block("(A) (B)"), COLOURS, None),
    (block("red and blue"), COLOURS, None),
    (block("dark red, not red"), SHADES, None),
    ("The answer is (A) or (B).", COLOURS, None),
    ("The answer is B because the square is blue, or maybe A.", COLOURS, None),  # a reason that hedges is read
    (block("A red one, or B"), COLOURS, None),
    # ---- letter and text disagree, letters beyond the options, nothing
    (block("(B) red"), COLOURS, None),
    (block("B: red"), COLOURS, None),
    (block("(B) red"), SHADES, None),
    (block("(E)"), COLOURS, None),
    (block("E"), COLOURS, None),
    (block("(E) blue"), COLOURS, None),
    (block("(C)"), YES_NO, None),
    (block("(B)"), YES_NO, 1),
    (block(""), COLOURS, None),
    (block("**"), COLOURS, None),
    ("", COLOURS, None),
    # ---- free text without a block or a statement is read only when it is nothing but a form
    ("I think it is blue", COLOURS, None),
    ("Comparing (A) red and (B) blue, blue is right.", COLOURS, None),
    ("no idea", COLOURS, None),
]


@pytest.mark.parametrize("reply, options, expected", READ)
def test_read_choice(reply, options, expected):
    assert read_choice(reply, options) == expected


@pytest.mark.parametrize(
    "answer, expected",
    [  # a parsed trace's answer, the block's content; the same forms and guards
        ("(A)", 0),
        ("A.", 0),
        ("a", 0),
        ("**C**", 2),
        ("Red.", 0),
        ("The dark red", 1),
        ("B. dark red", 1),
        ("Option B", 1),
        ("the answer is red", 0),
        ("(B) red", None),
        ("A or B", None),
        ("red and blue", None),
        ("not red", None),
        ("", None),
    ],
)
def test_choice_in_answer(answer, expected):
    assert choice_in_answer(answer, SHADES) == expected


def test_junk_never_raises_and_stays_in_range():
    rng = random.Random(0)
    alphabet = string.printable + "()<>/ABCD“”é’\u00a0{}\\"
    pieces = ["<answer>", "</answer>", "<think>", "</think>", "(A) ", "B. ", "option ", "not ", "answer is ", "\n"]
    pieces += ["red", "dark red", "\\boxed{", "**", "because "]
    for _ in range(1000):
        text = "".join(
            rng.choice(pieces) if rng.random() < 0.5 else "".join(rng.choices(alphabet, k=rng.randint(0, 5)))
            for _ in range(rng.randint(0, 20))
        )
        choice = read_choice(text, SHADES)
        assert choice is None or 0 <= choice < 4
        assert judge_verdict(text) in (True, False, None)


# ---------------------------------------------------------------- judge verdicts


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Equivalent", True),
        ("Equivalent.", True),
        ("**Equivalent**", True),
        ("  equivalent  \n\n", True),
        ("<answer>Equivalent</answer>", True),
        ("Verdict: Equivalent", True),
        ("The candidate picks (B), the reference is (B).\nSo they agree.\n\nEquivalent", True),
        ("Different", False),
        ("Different.", False),
        ("Not equivalent.", False),  # read as Equivalent before
        ("**NOT EQUIVALENT**", False),
        ("The candidate says red.\nDifferent", False),
        ("The answers are not equivalent", None),
        ("equivalent?", None),
        ("Equivalent or Different", None),
        ("Equivalent\nWait, no: they name different options.", None),  # the last line decides
        ("They look different at first, but: Equivalent.", None),
        ("Not different", None),
        ("I cannot tell", None),
        ("", None),
    ],
)
def test_judge_verdict_reads_only_the_closed_vocabulary_on_the_last_line(reply, expected):
    assert judge_verdict(reply) is expected


def test_the_judge_prompt_asks_for_the_vocabulary():
    text = load_prompt("judge_equivalence.j2").render(question="q", reference="(B) blue", candidate="blue")
    assert all(word.capitalize() in text for word in VERDICTS if " " not in word)


# ---------------------------------------------------------------- four-phase: the answer comes after the thought


def test_four_phase_answer_only_inside_the_thought_is_rejected():
    body = " ".join(["word"] * 30)
    assert four_phase_structure(f"<think>{body} <answer>(B)</answer></think> So it is B.", 10) == "answer_inside_think"
    after = f"<think>{body} <answer>(A)</answer></think> Therefore, the final answer is <answer>(B)</answer>."
    assert four_phase_structure(after, 10) is None


# ---------------------------------------------------------------- the verifier's view of the options


def test_verifier_view_shuffles_by_question_and_the_gold_follows():
    options = ["red", "blue", "green", "yellow"]
    shown, gold = verifier_view("Which is the ball?", options, 2)
    assert sorted(shown) == sorted(options) and shown[gold] == "green"
    assert verifier_view("Which is the ball?", options, 2) == (shown, gold)  # the same question, the same view
    # stage 2's former inline shuffle of the option texts gives the same order, so its cached calls still hold
    texts = list(options)
    random.Random("lgt-verify:Which is the ball?").shuffle(texts)
    assert shown == texts
    # over many questions the gold is not kept at the writer's position (a fixed order would keep it 100 %)
    views = [verifier_view(f"question {i}", options, 0) for i in range(400)]
    assert 60 < sum(g == 0 for _, g in views) < 140  # about a quarter
    assert all(s[g] == "red" for s, g in views)
