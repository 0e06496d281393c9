"""Closed vocabularies shared by the artifacts, the recipe and the code, each defined once.

A `StrEnum` member equals, hashes and formats as its string, so it can stand
wherever the string did; pydantic dumps it as the string in JSON mode. The
tuples hold the plain strings, in declaration order, for schema checks.
"""

from __future__ import annotations

from enum import StrEnum


class Letter(StrEnum):
    """Option letters: `options[i]` is lettered `LETTERS[i]`."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


LETTERS = "".join(m.value for m in Letter)  # "ABCD"


class OptionStyle(StrEnum):
    """How the lettered options are written in the user prompt."""

    PARENS = "(A) text"
    DOT = "A. text"


class AnswerFormat(StrEnum):
    """How a question asks the answer to be written: "(B)", "B." or the option's text."""

    PARENS = "(X)"
    DOT = "X."
    TEXT = "text"


OPTION_STYLES = tuple(m.value for m in OptionStyle)
ANSWER_FORMATS = tuple(m.value for m in AnswerFormat)


class Category(StrEnum):
    """Trace categories: a simple CoT's mark (O correct, X wrong), an expansion's two marks, or MMFR's traces."""

    O = "O"  # noqa: E741 (the paper's mark)
    X = "X"
    O_O = "O->O"
    O_X = "O->X"
    X_O = "X->O"
    X_X = "X->X"
    FOUR_PHASE = "four_phase"


SIMPLE_CATEGORIES = (Category.O.value, Category.X.value)
LONG_CATEGORIES = (Category.O_O.value, Category.O_X.value, Category.X_O.value, Category.X_X.value)


def simple_category(correct: bool) -> str:
    """O or X: whether a simple CoT chose the gold."""
    return (Category.O if correct else Category.X).value


def long_category(simple_correct: bool, correct: bool) -> str:
    """O->O, O->X, X->O or X->X: the simple CoT's mark, then the expansion's."""
    return Category(f"{simple_category(simple_correct)}->{simple_category(correct)}").value


class DpoRule(StrEnum):
    """LPT's DPO pair rules, "chosen>rejected", in the order pairs are kept when deduplicating."""

    O_OVER_O_X = "O>O->X"  # a correct simple CoT over its own expansion that went wrong
    X_O_OVER_X_X = "X->O>X->X"  # a correct expansion over a wrong expansion of the same question
    X_O_OVER_X = "X->O>X"  # a correct expansion over the wrong simple CoT it grew from
    O_OVER_X = "O>X"  # mixed simple results: a correct simple CoT over a wrong one
    O_OVER_X_X = "O>X->X"  # mixed simple results: a correct simple CoT over a wrong expansion


DPO_RULES = tuple(m.value for m in DpoRule)


class PassRateSubset(StrEnum):
    """Questions by the small solver's pass rate: all, not always solved (MMFR), never solved (MMFR's hardest)."""

    ALL = "all"
    BELOW_1 = "pass_rate_below_1"
    ZERO = "pass_rate_zero"


class FourPhaseSubset(StrEnum):
    """Which four-phase traces join SFT: none, or those of a pass-rate subset."""

    NONE = "none"
    ALL = PassRateSubset.ALL.value
    BELOW_1 = PassRateSubset.BELOW_1.value
    ZERO = PassRateSubset.ZERO.value


class Split(StrEnum):
    """Published splits: LGT publishes per synthesis stage."""

    STAGE1 = "stage1"
    STAGE2 = "stage2"


SPLITS = tuple(m.value for m in Split)


def split_of(stage: int) -> str:
    """The split of a question of synthesis stage 1 or 2."""
    return f"stage{stage}"
