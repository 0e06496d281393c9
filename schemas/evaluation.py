"""Evaluation artifacts: benchmark questions (`benchmark_suites`) and scored model outputs (`benchmark_scores`).

A benchmark row is one multiple-choice question, already rendered as the model is asked it (the training
prompts' system prompt and lettered options). Benchmarks may have 2 to 10 options (MMLU-Pro has 10), so
letters run A to J here, not only A to D as in the training sets.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.typing import Series

EVAL_LETTERS = "ABCDEFGHIJ"  # options[i] is lettered EVAL_LETTERS[i]

_s, _i64, _b = pa_arrow.string(), pa_arrow.int64(), pa_arrow.bool_()

BENCHMARK_ARROW = pa_arrow.schema(
    [
        ("benchmark", _s),  # the suite's name in the recipe
        ("task", _s),  # the suite's own task/category/sub-task; scores are reported per task and overall
        ("question_id", _s),  # unique within the benchmark, stable across loads of the same file
        ("source_file", _s),  # the file the row was read from (for synthetic: the generator and its seed)
        ("row", _i64),  # its row (or line, or record) number in that file, from 0
        ("question", _s),  # the question alone, options stripped where the layout put them inside it
        ("options", pa_arrow.list_(_s)),  # option texts, in the published order
        ("gold_letter", _s),
        ("image", pa_arrow.binary()),  # encoded image bytes; null for a text benchmark
        ("image_id", _s),  # null for a text benchmark
        ("stand_in", _s),  # the image as text (caption + objects) for a model without vision; null where unknown
        ("system_prompt", _s),
        ("user_prompt", _s),
    ]
)

SCORES_ARROW = pa_arrow.schema(
    [
        ("model", _s),  # base_model, sft_checkpoint, dpo_checkpoint
        ("model_revision", _s),  # the checkpoint's revision (keys the call cache)
        ("benchmark", _s),
        ("task", _s),
        ("question_id", _s),
        ("gold_letter", _s),
        ("output", _s),  # the whole reply, kept for inspection
        ("choice", _s),  # the letter the answer reader read; "" when it read none
        ("readable", _b),
        ("correct", _b),
        ("forced_close", _b),  # the thinking budget closed the thought
        ("error", _s),  # the engine's error kind when the call failed after its retries; "" otherwise
        ("call_key", _s),
    ]
)


def _rows(df: pd.DataFrame, ok) -> pd.Series:
    return pd.Series([bool(ok(r)) for r in df.to_dict("records")], index=df.index, dtype=bool)


class BenchmarkSchema(pa.DataFrameModel):
    benchmark: Series[str] = pa.Field(str_length={"min_value": 1})
    task: Series[str] = pa.Field(str_length={"min_value": 1})
    question_id: Series[str] = pa.Field(str_length={"min_value": 1})
    source_file: Series[str] = pa.Field(str_length={"min_value": 1})
    row: Series[int] = pa.Field(ge=0)
    question: Series[str] = pa.Field(str_length={"min_value": 1})
    options: Series[object]
    gold_letter: Series[str] = pa.Field(isin=list(EVAL_LETTERS))
    image: Series[object] = pa.Field(nullable=True)
    image_id: Series[str] = pa.Field(nullable=True)
    stand_in: Series[str] = pa.Field(nullable=True)
    system_prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    user_prompt: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        name = "benchmark_suites"

    @pa.dataframe_check(name="question_id_unique_per_benchmark")
    @classmethod
    def _unique(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["benchmark", "question_id"], keep=False)

    @pa.dataframe_check(name="gold_names_an_option")
    @classmethod
    def _gold(cls, df: pd.DataFrame) -> Series[bool]:
        return _rows(
            df,
            lambda r: (
                2 <= len(r["options"]) <= len(EVAL_LETTERS)
                and EVAL_LETTERS.index(r["gold_letter"]) < len(r["options"])
                and all(isinstance(o, str) and o.strip() for o in r["options"])
            ),
        )


class ScoresSchema(pa.DataFrameModel):
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    model_revision: Series[str] = pa.Field(str_length={"min_value": 1})
    benchmark: Series[str] = pa.Field(str_length={"min_value": 1})
    task: Series[str] = pa.Field(str_length={"min_value": 1})
    question_id: Series[str] = pa.Field(str_length={"min_value": 1})
    gold_letter: Series[str] = pa.Field(isin=list(EVAL_LETTERS))
    output: Series[str]
    choice: Series[str] = pa.Field(isin=["", *EVAL_LETTERS])
    readable: Series[bool]
    correct: Series[bool]
    forced_close: Series[bool]
    error: Series[str]
    call_key: Series[str]

    class Config:
        strict = True
        name = "benchmark_scores"

    @pa.dataframe_check(name="correct_means_read_and_gold")
    @classmethod
    def _correct(cls, df: pd.DataFrame) -> Series[bool]:
        return _rows(
            df,
            lambda r: r["readable"] == (r["choice"] != "") and r["correct"] == (r["choice"] == r["gold_letter"]),
        )
