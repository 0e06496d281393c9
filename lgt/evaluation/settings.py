"""Benchmark suites a recipe names (`stages.benchmark_suites.suites`): files in a published layout, any MCQ file
through a column mapping, or held-out synthetic scenes. Nothing is downloaded: every path is a local file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from lgt.engines.settings import Sampling
from lgt.roles import RoleName
from lgt.settings import Strict, resolve_path, unique_names

SUITE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"  # it becomes part of a partition key and a file name
FILE_KINDS = ("cv_bench", "vstar", "mmvp", "mmstar", "mme_realworld", "mmlu_pro", "mcq")


class SuiteColumns(Strict):
    """Where a file keeps each field; a published layout's preset fills what is not given here."""

    question: str | None = None
    options: str | None = Field(None, description="a list column, or a text column of lettered options")
    option_columns: list[str] | None = Field(None, description="one column per option, in letter order (A, B, ...)")
    answer: str | None = Field(None, description="the gold: a letter ('B', '(B)'), or a 0-based index")
    image: str | None = Field(None, description="image bytes, an HF image struct, base64 text, or a relative path")
    task: str | None = Field(None, description="the task or category scores are broken down by")
    id: str | None = None


class FileSuite(Strict):
    kind: Literal["cv_bench", "vstar", "mmvp", "mmstar", "mme_realworld", "mmlu_pro", "mcq"]
    name: str = Field(pattern=SUITE_NAME)
    path: Path = Field(description="the benchmark's file, or its folder in the published layout")
    image_root: Path | None = Field(None, description="where relative image paths point; default: next to the file")
    columns: SuiteColumns | None = Field(None, description="overrides the layout's preset; required for kind mcq")
    max_questions: int | None = Field(None, ge=1, description="a seeded sample of this many; empty: every question")
    seed: int = 0

    _paths = field_validator("path", "image_root")(resolve_path)


class SyntheticSuite(Strict):
    """Scenes of a synthetic source of the recipe drawn from a seed no training source uses, asked stage-1 and
    stage-2 questions by the recipe's own templates (no model calls), never in any training split."""

    kind: Literal["synthetic"]
    name: str = Field(pattern=SUITE_NAME)
    like: str = Field(description="the synthetic source whose generator settings the scenes copy")
    seed: int = Field(description="the scene seed; must differ from every synthetic training source's seed")
    images: int = Field(64, ge=1, le=100_000)
    max_questions: int | None = Field(None, ge=1, description="a seeded sample, balanced over tasks; empty: all")


Suite = Annotated[Union[SyntheticSuite, FileSuite], Field(discriminator="kind")]  # noqa: UP007
CHECKPOINTS = ("base_model", "sft_checkpoint", "dpo_checkpoint")


class BenchmarkSuitesSettings(Strict):
    suites: list[Suite] = Field([], description="the benchmarks every model is scored on")

    @field_validator("suites")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        return unique_names(v, "suite")


class BenchmarkScoresSettings(Strict):
    role: RoleName = Field("vlm", description="the backend settings models are served with; the model is replaced")
    models: list[Literal["base_model", "sft_checkpoint", "dpo_checkpoint"]] = Field(
        list(CHECKPOINTS), min_length=1, description="the models scored on every suite"
    )
    sampling: Sampling = Field(
        Sampling(n=1, temperature=0.0, max_new_tokens=1024), description="greedy; LPT: up to 1024 new tokens"
    )
    prefill: str = Field(
        "",
        description="the reply starts with this text; '<think>\n</think>\n<answer>' asks for the answer without a "
        "thought (one prefill per question instead of one per thinking phase: what the CPU demo can afford)",
    )
    preview: int = Field(4, ge=0, le=32, description="outputs shown per partition in the UI")


class ReportSettings(Strict):
    baseline: Literal["base_model", "sft_checkpoint", "dpo_checkpoint"] = "base_model"
    confidence: float = Field(0.95, gt=0, lt=1)
