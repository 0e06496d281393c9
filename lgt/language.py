"""English for labels and answers: the one place plurals and articles are made, and texts are compared.

Labels come from datasets (COCO's 80, LVIS-style vocabularies, the synthetic scene shapes), so a hand-rolled
"add -s" rule writes "knifes", "mouses" and "sheeps". `inflect` knows the irregular and invariant nouns and
pluralises the head of a compound ("wine glass" -> "wine glasses"); the few labels it gets wrong for our use are
fixed below.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import inflect

# Mass nouns a count question names without "-s" ("how many broccoli"); inflect would write "broccolis".
UNCOUNTABLE = frozenset({"asparagus", "broccoli", "popcorn", "rice", "spinach"})

_QUALIFIER = re.compile(r"^(.*?)(\s*\([^()]*\))$")  # "bow (weapon)": LVIS names its senses in parentheses


@cache
def _engine() -> inflect.engine:
    return inflect.engine()


@cache
def plural(noun: str) -> str:
    """The plural of a singular (or already plural-form) noun phrase: "knife" -> "knives", "skis" -> "skis"."""
    if not noun.strip():
        raise ValueError(f"cannot pluralise an empty label: {noun!r}")
    qualified = _QUALIFIER.match(noun)
    if qualified and qualified.group(1).strip():  # pluralise the head, keep the sense: "bows (weapon)"
        return plural(qualified.group(1)) + qualified.group(2)
    head = noun.rsplit(" ", 1)[-1]
    if head.lower() in UNCOUNTABLE:
        return noun
    if head.isupper() and len(head) > 1:  # an acronym: "TV" -> "TVs", not inflect's "TVS"
        return noun + "s"
    out = _engine().plural_noun(noun)
    # inflect adds a bare "s" to a word it reads as plural already ("skis" -> "skiss", "jeans" -> "jeanss");
    # a word ending in "s" never takes a bare "s", so such labels (pluralia tantum) stay as they are
    if out == noun + "s" and noun.endswith("s"):
        return noun
    return out


def plural_for(noun: str, n: int) -> str:
    """The noun as `n` of it is written: singular for one, plural otherwise ("one star", "two stars")."""
    return noun if n == 1 else plural(noun)


def with_article(phrase: str) -> str:
    """ "a" or "an" before a phrase, by its sound ("an orange cross", "a uniform star", "an hour")."""
    return _engine().a(phrase)


# text comparison: options, answers and questions

_QUOTES = "\"'`“”‘’«»"
_TRAILING_PUNCT = ".,;:!?"
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")


def normalize(text: str) -> str:
    """The form in which option, answer and question texts are compared."""
    s = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    # quotes and end punctuation nest either way ('"red."', '"red".'), so peel until nothing changes
    previous = None
    while s != previous:
        previous = s
        s = s.strip(_QUOTES).rstrip(_TRAILING_PUNCT).strip()
    return _ARTICLE.sub("", s, count=1)


def phrase_spans(phrase: str, text: str) -> list[tuple[int, int]]:
    """Where `phrase` occurs in `text` as whole words; lookarounds rather than \\b so '3.5' or '(x)' work too."""
    if not phrase:
        return []
    return [m.span() for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text)]
