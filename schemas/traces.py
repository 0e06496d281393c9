"""Trace and training-data artifacts: Arrow layouts and pandera checks.

`simple_cots` (LPT stage B), `long_cots` (LPT stage C), `four_phase` (MMFR
distillation), `difficulty` (pass rates), then `sft_data`, `dpo_pairs` and
`rl_prompts`. Every row carries its parents' ids back to `image_id` and the
call keys that produced it. Trace categories are written with ASCII arrows:
O, X (simple CoTs) and O->O, O->X, X->O, X->X (expansions).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.typing import Series

from schemas.vocab import (
    ANSWER_FORMATS,
    DPO_RULES,
    LETTERS,
    LONG_CATEGORIES,
    SIMPLE_CATEGORIES,
    SPLITS,
    Category,
    long_category,
    simple_category,
    split_of,
)

SFT_CATEGORIES = (Category.O.value, Category.O_O.value, Category.X_O.value, Category.FOUR_PHASE.value)
DPO_CHOSEN_CATEGORIES = (Category.O.value, Category.X_O.value)
DPO_REJECTED_CATEGORIES = (Category.X.value, Category.O_X.value, Category.X_X.value)
# (?s): thoughts span lines; pandera's str_matches takes the pattern text, so the flag lives inside it
TARGET = re.compile(r"(?s)^<think> .* </think> <answer> .+ </answer>$")

_s, _i32, _i64, _f64, _b = pa_arrow.string(), pa_arrow.int32(), pa_arrow.int64(), pa_arrow.float64(), pa_arrow.bool_()
_str_list = pa_arrow.list_(_s)
_HEX32 = r"^[0-9a-f]{32}$"

# the question a row is about, copied so each artifact reads on its own
_QUESTION_FIELDS = [("question_id", _s), ("image_id", _s), ("source", _s), ("stage", _i32), ("family", _s)]
# a trace under a thinking budget: the engine closed the thought (budget spent) / made it go on (below the minimum)
_FORCED = [("forced_close", _b), ("forced_continue", _b)]

SIMPLE_COTS_ARROW = pa_arrow.schema(
    [
        ("cot_id", _s),
        *_QUESTION_FIELDS,
        ("sample_index", _i32),
        ("response", _s),  # the whole reply, starting with the "<think>" prefill
        ("thought", _s),  # inside <think> … </think>, original casing
        ("answer", _s),  # inside <answer> … </answer>
        ("choice", _s),  # the option letter the answer names; "" when none or several
        ("gold_letter", _s),
        ("correct", _b),
        ("category", _s),  # O or X
        ("grounding", _s),  # image: the model saw the image; caption: its text stand-in
        ("completion_tokens", _i32),
        *_FORCED,
        ("model", _s),
        ("prompt_version", _s),
        ("call_key", _s),
    ]
)

LONG_COTS_ARROW = pa_arrow.schema(
    [
        ("trace_id", _s),
        ("cot_id", _s),
        *_QUESTION_FIELDS,
        ("sample_index", _i32),
        ("cue", _s),  # the cue word the continuation started from
        ("continuation", _s),  # what the reasoner wrote after the cue, as generated
        ("thought", _s),  # full thought: simple CoT + separator + cue + the continuation's thinking
        ("added_chars", _i32),  # length of the added thinking (cue + continuation)
        ("answer", _s),
        ("choice", _s),
        ("gold_letter", _s),
        ("simple_correct", _b),
        ("correct", _b),
        ("category", _s),  # O->O, O->X, X->O or X->X
        *_FORCED,
        ("ban_enforced", _b),  # the leak words were banned at decode time (else only filtered after)
        ("model", _s),
        ("prompt_version", _s),
        ("call_keys", _str_list),
    ]  # the simple CoT's key, then this one's
)

FOUR_PHASE_ARROW = pa_arrow.schema(
    [
        ("id", _s),
        *_QUESTION_FIELDS,
        # MMFR's canonical fields
        ("original_question", _s),
        ("original_answer", _s),  # the question text and the gold option text
        ("question", _s),  # as sent: the lettered options included
        ("answer", _s),  # gold letter
        ("caption", _s),
        ("response", _s),  # the teacher's whole trace, starting with "<think>"
        ("thought", _s),
        ("final_answer", _s),
        ("words", _i32),
        ("is_consistent", _b),
        ("consistency_analysis", _s),
        ("checked_by", _s),  # normalised (matching decided) or judge (the verifier role decided)
        ("grounding", _s),
        *_FORCED,
        ("model", _s),
        ("prompt_version", _s),
        ("call_keys", _str_list),
    ]
)

DIFFICULTY_ARROW = pa_arrow.schema(
    [
        *_QUESTION_FIELDS,
        ("k", _i32),
        ("n_correct", _i32),
        ("pass_rate", _f64),
        ("pass_rate_zero", _b),  # MMFR's hardest subset
        ("pass_rate_below_1", _b),  # MMFR's "not always solved" subset
        ("choices", _str_list),  # the letter each attempt picked, "" for none
        ("forced_attempts", _i32),  # attempts whose thinking budget ran out (closed by the engine)
        # the bias audit's model baseline: the letter the small solver picked reading the question and options
        # alone (no image, no stand-in), "" for none; null when the blind pass is off or its call failed
        ("blind_choice", _s),
        ("model", _s),
        ("call_keys", _str_list),
    ]
)

SFT_ARROW = pa_arrow.schema(
    [
        ("sft_id", _s),
        ("split", _s),
        *_QUESTION_FIELDS,
        ("category", _s),  # O, O->O, X->O (LPT) or four_phase (MMFR)
        ("system_prompt", _s),
        ("user_prompt", _s),
        ("thought", _s),
        ("answer", _s),
        ("target", _s),  # "<think> thought </think> <answer> answer </answer>"
        ("weight", _f64),  # the sampling weight it was drawn with
        ("trace_id", _s),  # the cot_id, trace_id or four_phase id it came from
        ("call_keys", _str_list),
    ]
)

DPO_ARROW = pa_arrow.schema(
    [
        ("pair_id", _s),
        ("split", _s),
        *_QUESTION_FIELDS,
        ("rule", _s),
        ("system_prompt", _s),
        ("user_prompt", _s),
        ("chosen", _s),
        ("rejected", _s),  # targets in the SFT format
        ("chosen_id", _s),
        ("rejected_id", _s),
        ("chosen_category", _s),
        ("rejected_category", _s),
        ("call_keys", _str_list),
    ]
)

RL_ARROW = pa_arrow.schema(
    [
        *_QUESTION_FIELDS,
        ("split", _s),
        ("system_prompt", _s),
        ("user_prompt", _s),
        ("question", _s),
        ("options", _str_list),
        ("gold_letter", _s),
        ("gold_text", _s),
        ("answer_format", _s),
        ("pass_rate", _f64),
    ]  # NaN when the question has no difficulty row
)


def _rows(df: pd.DataFrame, ok) -> pd.Series:
    return df.apply(ok, axis=1) if len(df) else pd.Series([], dtype=bool)


class _QuestionRef(pa.DataFrameModel):
    question_id: Series[str] = pa.Field(str_matches=_HEX32)
    image_id: Series[str] = pa.Field(str_matches=_HEX32)
    source: Series[str] = pa.Field(str_length={"min_value": 1})
    stage: Series[np.int32] = pa.Field(isin=[1, 2])
    family: Series[str] = pa.Field(str_length={"min_value": 1})


class _Forced(pa.DataFrameModel):
    forced_close: Series[bool]
    forced_continue: Series[bool]


class SimpleCotsSchema(_QuestionRef, _Forced):
    """A parsed simple CoT, correct exactly when its choice is the gold letter."""

    cot_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    sample_index: Series[np.int32] = pa.Field(ge=0)
    response: Series[str] = pa.Field(str_startswith="<think>")
    thought: Series[str]
    answer: Series[str] = pa.Field(str_length={"min_value": 1})
    choice: Series[str] = pa.Field(isin=["", *LETTERS])
    gold_letter: Series[str] = pa.Field(isin=list(LETTERS))
    correct: Series[bool]
    category: Series[str] = pa.Field(isin=list(SIMPLE_CATEGORIES))
    grounding: Series[str] = pa.Field(isin=["image", "caption"])
    completion_tokens: Series[np.int32] = pa.Field(ge=0)
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    prompt_version: Series[str] = pa.Field(str_length={"min_value": 1})
    call_key: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        name = "simple_cots"

    @pa.dataframe_check(name="correct_iff_gold_choice")
    @classmethod
    def _correct(cls, df: pd.DataFrame) -> Series[bool]:
        return _rows(
            df,
            lambda r: (
                r["correct"] == (r["choice"] == r["gold_letter"]) and r["category"] == simple_category(r["correct"])
            ),
        )

    @pa.dataframe_check(name="no_duplicate_responses")
    @classmethod
    def _unique(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["question_id", "response"], keep=False)


class LongCotsSchema(_QuestionRef, _Forced):
    """An expansion of a simple CoT, labelled by both correctness marks."""

    trace_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    cot_id: Series[str] = pa.Field(str_matches=_HEX32)
    sample_index: Series[np.int32] = pa.Field(ge=0)
    cue: Series[str] = pa.Field(str_length={"min_value": 1})
    continuation: Series[str]
    thought: Series[str] = pa.Field(str_length={"min_value": 1})
    added_chars: Series[np.int32] = pa.Field(ge=1)
    answer: Series[str] = pa.Field(str_length={"min_value": 1})
    choice: Series[str] = pa.Field(isin=["", *LETTERS])
    gold_letter: Series[str] = pa.Field(isin=list(LETTERS))
    simple_correct: Series[bool]
    correct: Series[bool]
    category: Series[str] = pa.Field(isin=list(LONG_CATEGORIES))
    ban_enforced: Series[bool]
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    prompt_version: Series[str] = pa.Field(str_length={"min_value": 1})
    call_keys: Series[object]

    class Config:
        strict = True
        name = "long_cots"

    @pa.dataframe_check(name="category_from_both_marks")
    @classmethod
    def _category(cls, df: pd.DataFrame) -> Series[bool]:
        def ok(r) -> bool:
            want = long_category(r["simple_correct"], r["correct"])
            return r["category"] == want and r["correct"] == (r["choice"] == r["gold_letter"])

        return _rows(df, ok)

    @pa.dataframe_check(name="thought_contains_the_cue")
    @classmethod
    def _cue(cls, df: pd.DataFrame) -> Series[bool]:
        return _rows(df, lambda r: r["cue"] in r["thought"] and len(r["call_keys"]) == 2)


class FourPhaseSchema(_QuestionRef, _Forced):
    """A four-phase teacher trace that passed the structural and repetition filters."""

    id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    original_question: Series[str] = pa.Field(str_length={"min_value": 1})
    original_answer: Series[str] = pa.Field(str_length={"min_value": 1})
    question: Series[str] = pa.Field(str_length={"min_value": 1})
    answer: Series[str] = pa.Field(isin=list(LETTERS))
    caption: Series[str]
    response: Series[str] = pa.Field(str_startswith="<think>")
    thought: Series[str] = pa.Field(str_length={"min_value": 1})
    final_answer: Series[str] = pa.Field(str_length={"min_value": 1})
    words: Series[np.int32] = pa.Field(ge=1)
    is_consistent: Series[bool]
    consistency_analysis: Series[str] = pa.Field(str_length={"min_value": 1})
    checked_by: Series[str] = pa.Field(isin=["normalised", "judge"])
    grounding: Series[str] = pa.Field(isin=["image", "caption"])
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    prompt_version: Series[str] = pa.Field(str_length={"min_value": 1})
    call_keys: Series[object]

    class Config:
        strict = True
        name = "four_phase"

    @pa.check("response", name="one_think_block_and_balanced_answer_tags")
    @classmethod
    def _structure(cls, s: Series[str]) -> Series[bool]:
        return s.map(
            lambda t: (
                t.count("<think>") == 1
                and t.count("</think>") == 1
                and t.count("<answer>") == t.count("</answer>") >= 1
            )
        )


class DifficultySchema(_QuestionRef):
    """Pass rate of the small solver over k attempts, and the MMFR subsets."""

    question_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    k: Series[np.int32] = pa.Field(ge=1)
    n_correct: Series[np.int32] = pa.Field(ge=0)
    pass_rate: Series[float] = pa.Field(ge=0, le=1)
    pass_rate_zero: Series[bool]
    pass_rate_below_1: Series[bool]
    choices: Series[object]
    forced_attempts: Series[np.int32] = pa.Field(ge=0)
    blind_choice: Series[str] = pa.Field(nullable=True, isin=["", "A", "B", "C", "D"])
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    call_keys: Series[object]

    class Config:
        strict = True
        name = "difficulty"

    @pa.dataframe_check(name="pass_rate_is_correct_over_k")
    @classmethod
    def _rate(cls, df: pd.DataFrame) -> Series[bool]:
        def ok(r) -> bool:
            return (
                r["n_correct"] <= r["k"] == len(r["choices"])
                and r["forced_attempts"] <= r["k"]
                and abs(r["pass_rate"] - r["n_correct"] / r["k"]) < 1e-12
                and r["pass_rate_zero"] == (r["n_correct"] == 0)
                and r["pass_rate_below_1"] == (r["n_correct"] < r["k"])
            )

        return _rows(df, ok)


def _split_matches_stage(df: pd.DataFrame) -> pd.Series:
    return _rows(df, lambda r: r["split"] == split_of(r["stage"]))


class SftSchema(_QuestionRef):
    sft_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    split: Series[str] = pa.Field(isin=list(SPLITS))
    category: Series[str] = pa.Field(isin=list(SFT_CATEGORIES))
    system_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    user_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    thought: Series[str] = pa.Field(str_length={"min_value": 1})
    answer: Series[str] = pa.Field(str_length={"min_value": 1})
    target: Series[str] = pa.Field(str_matches=TARGET.pattern)
    weight: Series[float] = pa.Field(gt=0)
    trace_id: Series[str] = pa.Field(str_matches=_HEX32)
    call_keys: Series[object]

    class Config:
        strict = True
        name = "sft_data"

    @pa.dataframe_check(name="split_is_the_synthesis_stage")
    @classmethod
    def _split(cls, df: pd.DataFrame) -> Series[bool]:
        return _split_matches_stage(df)


class DpoSchema(_QuestionRef):
    pair_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    split: Series[str] = pa.Field(isin=list(SPLITS))
    rule: Series[str] = pa.Field(isin=list(DPO_RULES))
    system_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    user_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    chosen: Series[str] = pa.Field(str_matches=TARGET.pattern)
    rejected: Series[str] = pa.Field(str_matches=TARGET.pattern)
    chosen_id: Series[str] = pa.Field(str_matches=_HEX32)
    rejected_id: Series[str] = pa.Field(str_matches=_HEX32)
    chosen_category: Series[str] = pa.Field(isin=list(DPO_CHOSEN_CATEGORIES))
    rejected_category: Series[str] = pa.Field(isin=list(DPO_REJECTED_CATEGORIES))
    call_keys: Series[object]

    class Config:
        strict = True
        name = "dpo_pairs"

    @pa.dataframe_check(name="split_is_the_synthesis_stage")
    @classmethod
    def _split(cls, df: pd.DataFrame) -> Series[bool]:
        return _split_matches_stage(df)

    @pa.dataframe_check(name="chosen_and_rejected_unique_and_different")
    @classmethod
    def _dedup(cls, df: pd.DataFrame) -> Series[bool]:
        if not len(df):
            return pd.Series([], dtype=bool)
        key = df["question_id"]
        return (
            (df["chosen"] != df["rejected"])
            & ~pd.concat([key, df["chosen"]], axis=1).duplicated(keep=False)
            & ~pd.concat([key, df["rejected"]], axis=1).duplicated(keep=False)
        )


class RlSchema(_QuestionRef):
    question_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    split: Series[str] = pa.Field(isin=list(SPLITS))
    system_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    user_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    question: Series[str] = pa.Field(str_length={"min_value": 1})
    options: Series[object]
    gold_letter: Series[str] = pa.Field(isin=list(LETTERS))
    gold_text: Series[str] = pa.Field(str_length={"min_value": 1})
    answer_format: Series[str] = pa.Field(isin=list(ANSWER_FORMATS))
    pass_rate: Series[float] = pa.Field(nullable=True, ge=0, le=1)

    class Config:
        strict = True
        name = "rl_prompts"

    @pa.dataframe_check(name="gold_is_the_lettered_option")
    @classmethod
    def _gold(cls, df: pd.DataFrame) -> Series[bool]:
        return _rows(
            df,
            lambda r: (
                len(r["options"]) == 4
                and list(r["options"])[LETTERS.index(r["gold_letter"])] == r["gold_text"]
                and r["split"] == split_of(r["stage"])
            ),
        )
