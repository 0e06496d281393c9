"""Parsing model-written MCQs on hand-written model outputs (reading a solver's choice: tests/test_answers.py)."""

import random
import string
from collections import Counter

import pytest

from lgt.language import normalize
from lgt.questions.parse import REJECT_REASONS, ParsedMCQ, parse_mcqs

COLOURS = ["red", "blue", "green", "yellow"]


def item(
    question="What colour is the object at the top left?",
    options="(A) red\n(B) blue\n(C) green\n(D) yellow",
    answer="red",
    objects="o2, o5",
    type_="Recognition",
) -> str:
    return (
        f"<question>{question}</question>\n<options>\n{options}\n</options>\n<answer>{answer}</answer>\n"
        f"<objects>{objects}</objects>\n<type>{type_}</type>\n"
    )


def one(text: str) -> ParsedMCQ:
    kept, rejects = parse_mcqs(text)
    assert rejects == Counter() and len(kept) == 1
    return kept[0]


def reject(text: str) -> str:
    kept, rejects = parse_mcqs(text)
    assert kept == [] and sum(rejects.values()) == 1
    return next(iter(rejects))


# ---------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  The   Red  Square. ", "red square"),
        ('"red."', "red"),
        ("“Blue”!", "blue"),
        ("an apple?", "apple"),
        ("the the cube", "the cube"),  # one article only
        ("ＲＥＤ", "red"),  # NFKC folds full-width letters
        ("the", "the"),
        ("3.5", "3.5"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


# ---------------------------------------------------------------- parse_mcqs: kept items


def test_single_item_every_field():
    text = (
        "Here is a question.\n"
        "<question>  What colour is the object\n at the   top left? </question>\n"
        "<options>\n(A) red\n(B) blue\n(C)  green \n(D) yellow\n</options>\n"
        "<answer> Red. </answer>\n<objects>o2, o5 o7</objects>\n<type> Recognition </type>\n"
    )
    assert one(text) == ParsedMCQ(
        question="What colour is the object at the top left?",
        options=("red", "blue", "green", "yellow"),
        answer_index=0,
        object_ids=("o2", "o5", "o7"),
        reasoning_type="Recognition",
    )


def test_multiple_items_every_field():
    text = (
        item()
        + "\n"
        + item(
            question="How many circles are there?",
            options="A. two\nB. three\nC. four\nD. five",
            answer="four",
            objects="o1,o3,o4,o9",
            type_="Counting",
        )
    )
    kept, rejects = parse_mcqs(text)
    assert rejects == Counter()
    assert kept == [
        ParsedMCQ(
            "What colour is the object at the top left?",
            ("red", "blue", "green", "yellow"),
            0,
            ("o2", "o5"),
            "Recognition",
        ),
        ParsedMCQ(
            "How many circles are there?", ("two", "three", "four", "five"), 2, ("o1", "o3", "o4", "o9"), "Counting"
        ),
    ]


def test_objects_and_type_optional_and_tags_case_insensitive():
    text = "<QUESTION>Which shape is red?</Question><Options>\n(A) circle\n(B) square\n(C) star\n(D) heart\n</OPTIONS>"
    text += "<Answer>square</ANSWER>"
    assert one(text) == ParsedMCQ("Which shape is red?", ("circle", "square", "star", "heart"), 1, (), "")


@pytest.mark.parametrize("marker", ["({})", "{}.", "{})", "{}:"])
@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_option_markers(marker, case):
    options = "\n".join(f"{marker.format(case(letter))} {colour}" for letter, colour in zip("ABCD", COLOURS))
    assert one(item(options=options, answer="green")).options == tuple(COLOURS)


def test_blank_lines_between_options_are_ignored():
    assert one(item(options="\n(A) red\n\n(B) blue\n  \n(C) green\n(D) yellow\n\n")).options == tuple(COLOURS)


@pytest.mark.parametrize(
    "answer, index",
    [
        ("B", 1),
        ("(B)", 1),
        ("B.", 1),
        ("B)", 1),
        ("b", 1),
        ("(c)", 2),
        ("(B) blue", 1),
        ("B. Blue.", 1),
        ("d) yellow", 3),
    ],
)
def test_letter_answers(answer, index):
    assert one(item(answer=answer)).answer_index == index


def test_answer_text_is_compared_normalised():
    assert one(item(answer='"The Yellow."')).answer_index == 3


def test_option_text_that_looks_like_a_letter_form_is_matched_as_text():
    options = "(A) D.C.\n(B) Paris\n(C) Rome\n(D) Oslo"
    assert one(item(question="Which city is shown?", options=options, answer="D.C.")).answer_index == 0


# ---------------------------------------------------------------- parse_mcqs: rejects


def test_no_question_tag_is_no_items():
    assert parse_mcqs("") == ([], Counter({"no_items": 1}))
    assert parse_mcqs("I cannot write questions about this image.") == ([], Counter({"no_items": 1}))
    assert parse_mcqs("<options>(A) red</options><answer>red</answer>") == ([], Counter({"no_items": 1}))


@pytest.mark.parametrize(
    "text",
    [
        item(question="   "),
        item().replace("<answer>red</answer>", ""),
        item(answer="  "),
        item().replace("<options>", "").replace("</options>", ""),
        item(options="(A) red\n(B) blue\n(C) green"),  # three options
        item(options="(A) red\n(B) blue\n(C) green\n(D) yellow\n(E) pink"),  # five
        item(options="(A) red\n(C) blue\n(B) green\n(D) yellow"),  # out of order
        item(options="(A) red\n(A) blue\n(C) green\n(D) yellow"),  # repeated letter
        item(options="(A) red\n(B)\n(C) green\n(D) yellow"),  # empty option text
        item(options="(A) red\n(B) ...\n(C) green\n(D) yellow"),  # nothing left after normalising
        item(options="red\nblue\ngreen\nyellow"),  # no markers
        item(options="(A) red (B) blue (C) green (D) yellow"),  # all on one line
        item(options="- (A) red\n(B) blue\n(C) green\n(D) yellow"),
        item().replace("</question>", ""),
        item().replace("</type>", ""),  # an unclosed field anywhere
        item().replace("<answer>red</answer>", "<answer>red</answer><answer>blue</answer>"),  # repeated field
    ],
)
def test_malformed(text):
    assert reject(text) == "malformed"


def test_truncated_output_keeps_earlier_items():
    second = item(question="How many circles are there?", options="(A) two\n(B) three\n(C) four\n(D) five", answer="B")
    truncated = "<question>Which shape is green?</question>\n<options>\n(A) circle\n(B) squ"
    kept, rejects = parse_mcqs(item() + second + truncated)
    assert [k.question for k in kept] == ["What colour is the object at the top left?", "How many circles are there?"]
    assert kept[1].answer_index == 1
    assert rejects == Counter({"malformed": 1})


def test_truncated_in_last_tag():
    kept, rejects = parse_mcqs(item() + item().rsplit("</type>", 1)[0])
    assert len(kept) == 1 and rejects == Counter({"malformed": 1})


def test_options_not_distinct():
    assert reject(item(options="(A) red\n(B) blue\n(C) Blue.\n(D) yellow", answer="red")) == "options_not_distinct"
    assert reject(item(options="(A) red\n(B) a cube\n(C) the cube\n(D) yellow", answer="A")) == "options_not_distinct"


@pytest.mark.parametrize("answer", ["purple", "(B) red", "B. green", "E", "(E)", "red or blue"])
def test_answer_not_an_option(answer):
    assert reject(item(answer=answer)) == "answer_not_an_option"


@pytest.mark.parametrize("answer", ["red", "Red.", "A", "(B) red"])
def test_answer_matches_several_options(answer):
    assert reject(item(options="(A) red\n(B) Red.\n(C) green\n(D) yellow", answer=answer)) == (
        "answer_matches_several_options"
    )


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Is the red square left of the blue circle?", "red square"),
        ("Is the red square left of the blue circle?", "The red square."),
        ("Which is bigger, the star or the heart?", "star"),
    ],
)
def test_question_contains_answer(question, answer):
    options = f"(A) {answer}\n(B) blue circle\n(C) green star\n(D) yellow heart"
    if answer == "star":
        options = "(A) star\n(B) heart\n(C) circle\n(D) square"
    assert reject(item(question=question, options=options, answer=answer)) == "question_contains_answer"


def test_answer_only_inside_a_longer_word_is_not_in_the_question():
    # "red" occurs in "reddish" and "shred" but not as a word
    text = item(question="Which reddish shape is left of the shred?", answer="red")
    assert one(text).answer_index == 0


def test_rejects_are_counted_per_item_and_first_reason_wins():
    text = "".join(
        [
            item(),
            item(answer="purple"),
            item(answer="purple", options="(A) red\n(B) red\n(C) green\n(D) yellow"),  # answer check comes first
            item(options="(A) red\n(B) red\n(C) green\n(D) yellow", answer="green"),
            item(question="Is it red?", answer="red"),
            item(answer="  "),
        ]
    )
    kept, rejects = parse_mcqs(text)
    assert len(kept) == 1
    assert rejects == Counter(
        {"answer_not_an_option": 2, "options_not_distinct": 1, "question_contains_answer": 1, "malformed": 1}
    )
    assert set(rejects) <= set(REJECT_REASONS)


def test_junk_never_raises():
    rng = random.Random(0)
    alphabet = string.printable + "()<>/ABCD“”é\u00a0"
    pieces = ["<question>", "</question>", "<options>", "</options>", "<answer>", "</answer>", "(A) ", "B. ", "\n"]
    pieces += ["<objects>", "</objects>", "<type>", "</type>", "<QUESTION>"]
    for _ in range(500):
        text = "".join(
            rng.choice(pieces) if rng.random() < 0.4 else "".join(rng.choices(alphabet, k=rng.randint(0, 6)))
            for _ in range(rng.randint(0, 30))
        )
        kept, rejects = parse_mcqs(text)
        assert set(rejects) <= set(REJECT_REASONS)
        assert all(len(k.options) == 4 and 0 <= k.answer_index < 4 for k in kept)
