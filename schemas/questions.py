"""Question artifacts: `questions_grounded` (stage 1), `questions_composed` (stage 2) and `questions`.

The two stage tables share one layout: a question, its gold answer and three
distractors, unshuffled, with lineage (grounding objects, parent questions,
prompt version, model, call keys). `questions` is what later stages send: the
options shuffled and lettered, the gold letter, and the rendered prompts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.typing import Series

from schemas.images import is_json_object
from schemas.vocab import ANSWER_FORMATS, LETTERS, OPTION_STYLES

QUESTION_ORIGINS = ("template", "llm", "composed")
# the `family` column: a stage-1 family (lgt.questions.families.FAMILIES, plus "llm"), or the composition a stage-2
# question came from (lgt.questions.compose.COMPOSITIONS)
FAMILY_NAMES = (
    "counting",
    "existence",
    "attribute",
    "relative_position",
    "relative_size",
    "closest",
    "extreme",
    "count_comparison",
    "llm",
)
COMPOSITION_NAMES = ("chain", "combine", "conditional")

_str_list = pa_arrow.list_(pa_arrow.string())

QUESTION_ITEMS_ARROW = pa_arrow.schema(
    [
        ("question_id", pa_arrow.string()),
        ("image_id", pa_arrow.string()),
        ("source", pa_arrow.string()),
        ("stage", pa_arrow.int32()),
        ("family", pa_arrow.string()),
        ("origin", pa_arrow.string()),
        ("hops", pa_arrow.int32()),
        ("question", pa_arrow.string()),
        ("templated_question", pa_arrow.string()),  # stage 2: the form before an LLM rewrite
        ("rewrite", pa_arrow.string()),  # stage 2: kept, or why the rewrite was dropped; "" otherwise
        ("answer", pa_arrow.string()),
        ("distractors", _str_list),
        ("reasoning_type", pa_arrow.string()),
        ("grounding_ids", _str_list),
        ("parents", _str_list),
        ("spec", pa_arrow.string()),  # JSON: what the family computed the gold from
        ("prompt_version", pa_arrow.string()),
        ("model", pa_arrow.string()),
        ("call_keys", _str_list),
    ]
)

QUESTIONS_ARROW = pa_arrow.schema(
    [
        ("question_id", pa_arrow.string()),
        ("image_id", pa_arrow.string()),
        ("source", pa_arrow.string()),
        ("stage", pa_arrow.int32()),
        ("family", pa_arrow.string()),
        ("origin", pa_arrow.string()),
        ("hops", pa_arrow.int32()),
        ("question", pa_arrow.string()),
        ("options", _str_list),  # shuffled; options[i] is letter LETTERS[i]
        ("gold_letter", pa_arrow.string()),
        ("gold_text", pa_arrow.string()),
        ("option_style", pa_arrow.string()),  # "(A) text" or "A. text"
        ("answer_format", pa_arrow.string()),  # "(X)", "X." or "text"
        ("reasoning_type", pa_arrow.string()),
        ("system_prompt", pa_arrow.string()),
        ("user_prompt", pa_arrow.string()),
        ("grounding_ids", _str_list),
        ("parents", _str_list),
        ("prompt_version", pa_arrow.string()),
        ("seed", pa_arrow.int64()),
    ]
)

_HEX32 = r"^[0-9a-f]{32}$"


def _norm(s: str) -> str:
    return " ".join(str(s).lower().split())


class _QuestionColumns(pa.DataFrameModel):
    """The leading columns every question artifact shares."""

    question_id: Series[str] = pa.Field(unique=True, str_matches=_HEX32)
    image_id: Series[str] = pa.Field(str_matches=_HEX32)
    source: Series[str] = pa.Field(str_length={"min_value": 1})
    stage: Series[np.int32] = pa.Field(isin=[1, 2])
    family: Series[str] = pa.Field(isin=list(FAMILY_NAMES + COMPOSITION_NAMES))
    origin: Series[str] = pa.Field(isin=list(QUESTION_ORIGINS))
    hops: Series[np.int32] = pa.Field(ge=1, le=3)
    question: Series[str] = pa.Field(str_length={"min_value": 1})


class QuestionItemsSchema(_QuestionColumns):
    """A stage-1 or stage-2 question: one gold answer and three distinct wrong ones."""

    templated_question: Series[str]
    rewrite: Series[str]
    answer: Series[str] = pa.Field(str_length={"min_value": 1})
    distractors: Series[object]
    reasoning_type: Series[str] = pa.Field(str_length={"min_value": 1})
    grounding_ids: Series[object]
    parents: Series[object]
    spec: Series[str]
    prompt_version: Series[str] = pa.Field(str_length={"min_value": 1})
    model: Series[str]
    call_keys: Series[object]

    class Config:
        strict = True
        name = "question_items"

    @pa.dataframe_check(name="four_distinct_options")
    @classmethod
    def _options(cls, df: pd.DataFrame) -> Series[bool]:
        def ok(r) -> bool:
            opts = [r["answer"], *list(r["distractors"])]
            return len(opts) == 4 and len({_norm(o) for o in opts}) == 4 and all(o.strip() for o in opts)

        return df.apply(ok, axis=1) if len(df) else pd.Series([], dtype=bool)

    @pa.dataframe_check(name="stage_2_has_its_parents")
    @classmethod
    def _parents(cls, df: pd.DataFrame) -> Series[bool]:
        def ok(r) -> bool:
            return len(r["parents"]) == r["hops"] if r["stage"] == 2 else (r["hops"] == 1 and len(r["parents"]) == 0)

        return df.apply(ok, axis=1) if len(df) else pd.Series([], dtype=bool)

    @pa.check("spec", name="spec_is_json_object")
    @classmethod
    def _spec(cls, s: Series[str]) -> Series[bool]:
        return s.map(is_json_object)


class QuestionsSchema(_QuestionColumns):
    """A question ready to send: four distinct lettered options, the gold among them."""

    options: Series[object]
    gold_letter: Series[str] = pa.Field(isin=list(LETTERS))
    gold_text: Series[str] = pa.Field(str_length={"min_value": 1})
    option_style: Series[str] = pa.Field(isin=list(OPTION_STYLES))
    answer_format: Series[str] = pa.Field(isin=list(ANSWER_FORMATS))
    reasoning_type: Series[str] = pa.Field(str_length={"min_value": 1})
    system_prompt: Series[str] = pa.Field(str_contains="<think>")
    user_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    grounding_ids: Series[object]
    parents: Series[object]
    prompt_version: Series[str] = pa.Field(str_length={"min_value": 1})
    seed: Series[np.int64]

    class Config:
        strict = True
        name = "questions"

    @pa.check("options", name="four_distinct_options")
    @classmethod
    def _four(cls, s: Series[object]) -> Series[bool]:
        return s.map(lambda o: len(o) == 4 and len({_norm(x) for x in o}) == 4)

    @pa.dataframe_check(name="gold_is_the_lettered_option")
    @classmethod
    def _gold(cls, df: pd.DataFrame) -> Series[bool]:
        def ok(r) -> bool:
            opts = list(r["options"])
            return (
                len(opts) == 4
                and opts[LETTERS.index(r["gold_letter"])] == r["gold_text"]
                and opts.count(r["gold_text"]) == 1
            )

        return df.apply(ok, axis=1) if len(df) else pd.Series([], dtype=bool)
