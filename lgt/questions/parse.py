"""Parse model-written multiple-choice questions, and the text comparison (`normalize`) answers are read with.

A generator model writes one or more items in a tagged format::

    <question>What colour is the object at the top left?</question>
    <options>
    (A) red
    (B) blue
    (C) green
    (D) yellow
    </options>
    <answer>red</answer>
    <objects>o2, o5</objects>
    <type>Recognition</type>

`parse_mcqs` keeps the items that are well formed and unambiguous and counts why the others
were rejected; it is strict on purpose: a dropped item is cheap, a wrong label is not. It
never raises on a str. Which option a solver's reply picks is `lgt.answers.read_choice`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from lgt.language import normalize, phrase_spans
from schemas.vocab import LETTERS

REJECT_REASONS = (
    "no_items",
    "malformed",
    "options_not_distinct",
    "answer_not_an_option",
    "answer_matches_several_options",
    "question_contains_answer",
)
_TAGS = ("question", "options", "answer", "objects", "type")


@dataclass(frozen=True)
class ParsedMCQ:
    question: str  # stripped, inner whitespace collapsed
    options: tuple[str, ...]  # exactly 4, in A-D order, stripped, letter markers removed
    answer_index: int  # 0..3
    object_ids: tuple[str, ...]  # from <objects>, empty if absent
    reasoning_type: str  # from <type>, "" if absent


# ---------------------------------------------------------------- parse_mcqs


class _Reject(Exception):
    def __init__(self, reason: str):
        assert reason in REJECT_REASONS
        super().__init__(reason)
        self.reason = reason


_QUESTION_OPEN = re.compile(r"<question>", re.IGNORECASE)
_OPTION_LINE = re.compile(r"(?:\(([A-D])\)|([A-D])[.):])\s*(.*)", re.IGNORECASE)
# text after the letter must then equal that option; a bare letter only counts as the whole answer
_ANSWER_LETTER = re.compile(r"(?:\(([A-D])\)|([A-D])[.):])\s*(.*)|([A-D])", re.IGNORECASE | re.DOTALL)


def _field(chunk: str, tag: str) -> str | None:
    """Text inside <tag>...</tag>, None if the tag is absent. Unclosed (truncated) or repeated → malformed."""
    opens = list(re.finditer(f"<{tag}>", chunk, re.IGNORECASE))
    if not opens:
        return None
    if len(opens) > 1:
        raise _Reject("malformed")
    close = re.compile(f"</{tag}>", re.IGNORECASE).search(chunk, opens[0].end())
    if close is None:
        raise _Reject("malformed")
    return chunk[opens[0].end() : close.start()]


def _parse_options(block: str) -> tuple[str, ...]:
    letters, texts = [], []
    for line in block.splitlines():
        if not line.strip():
            continue
        m = _OPTION_LINE.fullmatch(line.strip())
        if m is None:
            raise _Reject("malformed")
        letters.append((m.group(1) or m.group(2)).upper())
        texts.append(m.group(3).strip())
    if "".join(letters) != LETTERS or not all(texts):
        raise _Reject("malformed")
    return tuple(texts)


def _answer_index(answer: str, norm_options: list[str]) -> int:
    # option text first, so an option that itself looks like a letter form ("D.C.") is still found
    target = normalize(answer)
    matches = [i for i, o in enumerate(norm_options) if o == target]
    if not matches and (m := _ANSWER_LETTER.fullmatch(answer)):
        letter = m.group(1) or m.group(2) or m.group(4)
        index = LETTERS.index(letter.upper())
        rest = m.group(3)
        if rest and normalize(rest) != norm_options[index]:
            raise _Reject("answer_not_an_option")
        # count by text even for a letter answer: if two options read the same, the letter is no help
        matches = [i for i, o in enumerate(norm_options) if o == norm_options[index]]
    if not matches:
        raise _Reject("answer_not_an_option")
    if len(matches) > 1:
        raise _Reject("answer_matches_several_options")
    return matches[0]


def _parse_item(chunk: str) -> ParsedMCQ:
    fields = {tag: _field(chunk, tag) for tag in _TAGS}
    question = " ".join((fields["question"] or "").split())
    answer = (fields["answer"] or "").strip()
    if not question or fields["options"] is None or not answer:
        raise _Reject("malformed")
    options = _parse_options(fields["options"])
    norm_options = [normalize(o) for o in options]
    if not all(norm_options):  # e.g. an option that is only punctuation: nothing to compare
        raise _Reject("malformed")
    # answer matching before distinctness, so "answer equals two options" is reported as such
    index = _answer_index(answer, norm_options)
    if len(set(norm_options)) < len(norm_options):
        raise _Reject("options_not_distinct")
    if phrase_spans(norm_options[index], normalize(question)):
        raise _Reject("question_contains_answer")
    return ParsedMCQ(
        question=question,
        options=options,
        answer_index=index,
        object_ids=tuple(t for t in re.split(r"[,\s]+", fields["objects"] or "") if t),
        reasoning_type=" ".join((fields["type"] or "").split()),
    )


def parse_mcqs(text: str) -> tuple[list[ParsedMCQ], Counter]:
    """Items kept, and a Counter of reject reasons (one per rejected item). No <question> at all → no_items."""
    starts = [m.start() for m in _QUESTION_OPEN.finditer(text)]
    if not starts:
        return [], Counter({"no_items": 1})
    kept: list[ParsedMCQ] = []
    rejects: Counter = Counter()
    # an item is its <question> and every tag up to the next <question>
    for start, end in zip(starts, [*starts[1:], len(text)]):
        try:
            kept.append(_parse_item(text[start:end]))
        except _Reject as reject:
            rejects[reject.reason] += 1
    return kept, rejects
