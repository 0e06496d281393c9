"""Reading answers: which option a model's reply names, and a judge's verdict. Every stage and evaluation use this.

`read_choice` takes a whole reply: the answer is the last <answer> block after the thought (an unclosed
one, cut off, runs to the end); a reply whose thought never closed gave no answer. Without a block, only
an answer statement ("The answer is B.") or a reply that is nothing but an accepted form is read.
`choice_in_answer` reads text already taken out of an <answer> block (a parsed trace's answer).

The forms, tried in order (tests/test_answers.py holds a row for each, and for each guard):

- whole span: the option's text (compared by `normalize`: case, quotes, end punctuation, a leading
  article); a letter alone, "(B)", "B.", "B)", "[B]", "**B**", "\\boxed{B}", "Option B", "option (b)";
  a letter then that option's text, "(B) blue", "B. blue", "B: blue", "B, blue", "B - blue" (a letter
  whose text is another option's names two options: None).
- scan, only inside an <answer> block or after an answer statement: every option the span mentions,
  by letter ("(B)", "option b", a capital "B" as a word) or by its text as whole words (a longer option
  wins over one inside it, "dark red" over "red"); a "because …" or "since …" clause is not read
  unless it hedges ("or", "maybe", "perhaps").
  Exactly one option mentioned, and no negation outside the option texts, or None.

One mode for solver replies and trace answers alike: what keeps a wrong option from being read is the
guards (negation, two options named, letter and text disagreeing, a letter beyond the options), and
those hold everywhere; only where a span comes from decides whether it is scanned. A None costs a
sample; a misread answer would mislabel a trace, so every doubtful case is None. Never raises on a str.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from lgt.language import normalize, phrase_spans

NEGATIONS = (
    "not", "no", "never", "none", "neither", "nor", "cannot", "n't", "wrong", "incorrect", "false",
    "except", "excluding", "instead", "rather", "unlikely", "eliminate", "eliminated", "rule out", "ruled out",
)  # fmt: skip

_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
# "The answer is (B)", "Answer: B.", "**Final answer:** B"; what follows on its line is what it says
_STATEMENT = re.compile(r"\banswer\b[\s*]*(?:is\b|:)[\s:*]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_MARKUP = re.compile(r"[*`]+")
_LEAD = r"(?:(?:option|choice)\b\s*)?"
_LETTER_ONLY = re.compile(_LEAD + r"(?:\(([a-z])\)|\[([a-z])\]|([a-z])\)?)", re.IGNORECASE)  # end punctuation stripped
_LETTER_TEXT = re.compile(
    _LEAD + r"(?:\(([a-z])\)|\[([a-z])\]|([a-z])(?:\s*[.):,]|\s+[-–—]))\s*[-–—:]?\s*(\S.*)", re.IGNORECASE | re.DOTALL
)
# any case in "(b)" and "option b"; a bare letter only as a capital word ("a" is an article, "I" out of range)
_LETTER_MENTION = re.compile(r"(?i:\(([a-z])\)|\b(?:option|choice)\b\s*\(?([a-z])\b)|(?<![\w'’])([A-Z])(?![\w'’])")
_REASON = re.compile(r"\b(?:because|since)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:or|maybe|perhaps)\b", re.IGNORECASE)  # a reason that hedges is read with the answer
_NEGATION = re.compile(
    r"(?<!\w)(?:" + "|".join(re.escape(w) for w in NEGATIONS if w != "n't") + r")(?!\w)|\wn[’']t\b", re.IGNORECASE
)


def read_choice(text: str, options: Sequence[str]) -> int | None:
    """The 0-based option a whole reply picks, or None: no answer, several options, a negation or a doubtful form."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]  # an answer written inside the thought is not the answer
    elif _THINK_OPEN.search(text):
        return None  # the thought never closed: no answer was given
    opens = list(_ANSWER_OPEN.finditer(text))
    if opens:  # the last block; an unclosed one (the reply was cut off) runs to the end
        close = _ANSWER_CLOSE.search(text, opens[-1].end())
        return choice_in_answer(text[opens[-1].end() : close.start() if close else len(text)], options)
    return _read(text, options, scan=False)


def choice_in_answer(answer: str, options: Sequence[str]) -> int | None:
    """The 0-based option named by the content of an <answer> block, or None."""
    return _read(answer, options, scan=True)


def _read(span: str, options: Sequence[str], *, scan: bool) -> int | None:
    statements = list(_STATEMENT.finditer(span))
    if statements:  # the last "answer is ..." wins, up to the end of its sentence
        rest = span[statements[-1].end() :].lstrip().split("\n", 1)[0]
        span, scan = _SENTENCE_END.split(rest, maxsplit=1)[0], True
    s = _MARKUP.sub("", _BOXED.sub(r"\1", span)).strip()
    if not s:
        return None
    norm = [normalize(o) for o in options]
    equal = [i for i, o in enumerate(norm) if o and o == normalize(s)]
    if equal:
        return equal[0] if len(equal) == 1 else None
    if m := _LETTER_ONLY.fullmatch(s.rstrip(".,:;!").rstrip()):
        return _index(next(g for g in m.groups() if g), len(options))
    if m := _LETTER_TEXT.fullmatch(s):
        i, text = _index(next(g for g in m.groups()[:3] if g), len(options)), normalize(m.group(4))
        if i is None:
            return None
        if text == norm[i]:
            return i
        if text in norm:  # the letter and the text name two different options
            return None
    return _scan(s, norm, len(options)) if scan else None


def _index(letter: str, n: int) -> int | None:
    i = string.ascii_uppercase.index(letter.upper())
    return i if i < n else None


def _scan(span: str, norm: list[str], n: int) -> int | None:
    """The one option a short answer mentions, by letter or text, with no negation; else None."""
    if (m := _REASON.search(span)) and span[: m.start()].strip() and not _HEDGE.search(span, m.end()):
        span = span[: m.start()]  # "B because the cube is red" answers B; the reason may name other options
    text = normalize(span)
    spans = {i: phrase_spans(o, text) for i, o in enumerate(norm) if o}

    def inside_longer(i: int, s: int, e: int) -> bool:
        return any(len(norm[j]) > len(norm[i]) and a <= s and e <= b for j, found in spans.items() for a, b in found)

    named = {i for i, found in spans.items() if any(not inside_longer(i, s, e) for s, e in found)}
    # letters are read on the original span: the capital-letter form needs the case normalize drops
    for m in _LETTER_MENTION.finditer(_mask(span, norm)):
        i = _index(next(g for g in m.groups() if g), n)
        if i is not None:
            named.add(i)
    if len(named) != 1 or _NEGATION.search(_mask(text, norm)):
        return None
    return named.pop()


def _mask(text: str, norm: list[str]) -> str:
    """`text` with every option's text blanked (case-insensitively), so "no" as an option is not a negation."""
    for o in sorted((o for o in norm if o), key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(o)}(?!\w)", " ", text, flags=re.IGNORECASE)  # as in phrase_spans
    return text


# ---------------------------------------------------------------- judge verdicts

VERDICTS = {"equivalent": True, "different": False, "not equivalent": False}  # what judge_equivalence.j2 asks for
_VERDICT_TAGS = re.compile(r"</?answer>", re.IGNORECASE)
_VERDICT_LABEL = re.compile(r"^(?:final\s+)?(?:answer|verdict|judgement|judgment)\s*:\s*", re.IGNORECASE)


def judge_verdict(text: str) -> bool | None:
    """True for Equivalent, False for Different; None unless the last non-empty line is exactly one verdict.

    Strict on purpose: "The answers are not equivalent" or "Equivalent?" are unreadable, never a guess,
    because a misread verdict turns an inconsistent trace into a training target.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    s = _MARKUP.sub("", _VERDICT_TAGS.sub("", lines[-1])).strip()
    s = _VERDICT_LABEL.sub("", s).strip().strip("\"'“”‘’").rstrip(".!").strip()
    return VERDICTS.get(" ".join(s.lower().split()))
