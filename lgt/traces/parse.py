"""Reading traces: think and answer parts, and the quality filters.

Correctness is marked against the gold option only (LPT's released code also
accepted any option's text, a bug): the option the answer names is read by
`lgt.answers.choice_in_answer`, and an answer that names several options names none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lgt.engines import Sample
from schemas.vocab import LETTERS

_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)


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


def usable(sample: Sample, keep_forced: bool, rejects: Counter) -> bool:
    """Whether a sample is worth parsing: its call succeeded, and a thought the engine had to close (its thinking
    budget ran out) is kept only when the recipe says so. A dropped sample is counted under its reason."""
    if not sample.ok:
        rejects[f"call_failed/{sample.error}"] += 1
        return False
    if sample.forced_close and not keep_forced:
        rejects["forced/close"] += 1
        return False
    return True


def letter(index: int | None) -> str:
    return "" if index is None else LETTERS[index]


# LPT's leak list (description(s), describe(s/d), mention(s/ed), misread, text, state(s/d), say(s), said, internal,
# mental, visualize, visualization, user's, "the image described", "detailed image") with the forms a filter that
# matches from a word's start also catches, so that the decode-time ban (exact token sequences) covers them too
LEAK_WORDS = [
    "description",
    "descriptions",
    "describe",
    "describes",
    "described",
    "describing",
    "mention",
    "mentions",
    "mentioned",
    "mentioning",
    "misread",
    "text",
    "texts",
    "textual",
    "state",
    "states",
    "stated",
    "stating",
    "statement",
    "say",
    "says",
    "saying",
    "said",
    "internal",
    "internally",
    "mental",
    "mentally",
    "visualize",
    "visualizes",
    "visualized",
    "visualizing",
    "visualization",
    "visualise",
    "visualised",
    "visualising",
    "visualisation",
    "caption",
    "captions",
    "captioned",
    "user",
    "user's",
    "users",
]
LEAK_PHRASES = ["the image described", "detailed image", "object list", "objects list", "list of objects"]
# words that start with a leak word and are no leak: LPT's plain substring test dropped every "texture"
LEAK_EXEMPT = ["textur", "textile", "textbook"]

_WORD = r"[\w'’]"  # a word's characters: a match runs on through "user's"


def leak_pattern(words: Sequence[str], phrases: Sequence[str], exempt: Sequence[str] = ()) -> re.Pattern | None:
    """Leak words and phrases as LPT matches them, as substrings, but case-insensitive and from a word's start.

    "mention" catches "mentioning" and "visualize" "visualized" (LPT's plain `w in text`), while "mental" spares
    "fundamental" and "text" "context"; the match runs to the end of its word. A word starting with an `exempt`
    entry is no leak ("textur": texture, textured).
    """
    alts = sorted({re.escape(w.strip()) for w in [*phrases, *words] if w.strip()}, key=len, reverse=True)
    if not alts:
        return None
    skip = "|".join(re.escape(e.strip()) for e in exempt if e.strip())
    guard = f"(?!{skip})" if skip else ""
    return re.compile(rf"(?<!\w){guard}(?:{'|'.join(alts)}){_WORD}*", re.IGNORECASE)


def leak(text: str, pattern: re.Pattern | None) -> str | None:
    """The first leak in `text`, the whole word it starts ("Visualized"), or None."""
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
    """Why a teacher trace fails MMFR's structural checks, or None: one think block, balanced answer tags,
    a final answer after the thought (MMFR answers after </think>; one inside the thought is not it), length."""
    if len(_THINK_OPEN.findall(text)) != 1 or len(_THINK_CLOSE.findall(text)) != 1:
        return "think_blocks"
    opens = len(re.findall(r"<answer>", text, re.IGNORECASE))
    closes = len(re.findall(r"</answer>", text, re.IGNORECASE))
    if opens != closes:
        return "answer_tags_unbalanced"
    if opens == 0:
        return "no_answer"
    if not _ANSWER.search(text, _THINK_CLOSE.search(text).end()):
        return "answer_inside_think"
    if len(text.split()) < min_words:
        return "too_short"
    return None
