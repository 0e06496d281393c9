"""Reading traces: think and answer parts, the option an answer names, and the quality filters.

Correctness is marked against the gold option only (LPT's released code also
accepted any option's text, a bug): an answer counts when it is the gold's
letter as `(B)`, `B` or `B.`, the gold's exact text, or the letter followed by
that text; an answer that names several options names none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lgt.questions.parse import normalize
from schemas.vocab import LETTERS

_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_LETTER_ONLY = re.compile(r"^\(?([A-Da-d])\)?\.?$")
_LETTER_AND_TEXT = re.compile(r"^(?:\(([A-Da-d])\)|([A-Da-d])[.)])\s*(.+)$", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    thought: str  # between <think> and </think>, as written
    answer: str  # inside the last <answer> … </answer> after the thought, stripped


def parse_think_answer(text: str) -> Parsed | str:
    """Split a reply that starts inside <think> (the prefill included) into its parts, or say why it can't be."""
    opens = _THINK_OPEN.findall(text)
    if len(opens) != 1 or not text.lstrip().lower().startswith("<think>"):
        return "think_tags"
    closes = list(_THINK_CLOSE.finditer(text))
    if not closes:
        return "thought_not_closed"
    if len(closes) > 1:
        return "think_tags"
    start = _THINK_OPEN.search(text).end()
    thought = text[start : closes[0].start()].strip()
    if not thought:
        return "empty_thought"
    answers = _ANSWER.findall(text, closes[0].end())
    if not answers:
        return "no_answer"
    answer = answers[-1].strip()
    return Parsed(thought, answer) if answer else "empty_answer"


def last_answer(text: str) -> str:
    """The content of the last <answer> … </answer> anywhere in `text`, stripped; "" when there is none."""
    found = _ANSWER.findall(text)
    return found[-1].strip() if found else ""


def choice_of(answer: str, options: Sequence[str]) -> int | None:
    """The option an answer names in an accepted form: (B), B, B., the option's text, or "(B) text"; else None."""
    a = answer.strip().strip("*").strip()
    if m := _LETTER_ONLY.match(a):
        i = LETTERS.index(m.group(1).upper())
        return i if i < len(options) else None
    norm = [normalize(o) for o in options]
    if m := _LETTER_AND_TEXT.match(a):
        i = LETTERS.index((m.group(1) or m.group(2)).upper())
        return i if i < len(options) and normalize(m.group(3)) == norm[i] else None
    hits = [i for i, o in enumerate(norm) if o and o == normalize(a)]
    return hits[0] if len(hits) == 1 else None


def letter(index: int | None) -> str:
    return "" if index is None else LETTERS[index]


def leak_pattern(words: Sequence[str], phrases: Sequence[str]) -> re.Pattern | None:
    """Whole words and phrases, case-insensitive: "said" leaks, "saidai" does not."""
    alts = [re.escape(w.strip()) for w in [*phrases, *words] if w.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE) if alts else None


def leak(text: str, pattern: re.Pattern | None) -> str | None:
    """The first leaking word or phrase in `text`, or None."""
    m = pattern.search(text) if pattern else None
    return m.group(0) if m else None


def repeated_ngram(text: str, n: int, max_repeats: int) -> bool:
    """True when some run of n words occurs at least max_repeats times (overlaps count): the trace loops."""
    words = text.split()
    if len(words) < n:
        return False
    counts: Counter = Counter(hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1))
    return max(counts.values()) >= max_repeats


def four_phase_structure(text: str, min_words: int) -> str | None:
    """Why a teacher trace fails MMFR's structural checks, or None: one think block, balanced answer tags, length."""
    if len(_THINK_OPEN.findall(text)) != 1 or len(_THINK_CLOSE.findall(text)) != 1:
        return "think_blocks"
    opens = len(re.findall(r"<answer>", text, re.IGNORECASE))
    closes = len(re.findall(r"</answer>", text, re.IGNORECASE))
    if opens != closes:
        return "answer_tags_unbalanced"
    if opens == 0:
        return "no_answer"
    if len(text.split()) < min_words:
        return "too_short"
    return None


_VERDICT = re.compile(r"\b(equivalent|different)\b", re.IGNORECASE)


def judge_verdict(text: str) -> bool | None:
    """The judge's last word on it: True for Equivalent, False for Different, None when it gave neither."""
    found = _VERDICT.findall(text)
    return None if not found else found[-1].lower() == "equivalent"
