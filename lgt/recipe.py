"""Declarative recipes: YAML validated by pydantic.

A recipe names the sources (each split into shards, one Dagster partition per
shard), the model roles later stages call, and each stage's settings. Each
package keeps its own settings (`lgt.<package>.settings`); this module
assembles them into `Stages` and `Recipe`, and loads a recipe file. Errors
name the file, the line, the key path, the bad value and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from lgt.base_model import BaseModelSettings
from lgt.datasets.settings import DpoPairsSettings, ExportsSettings, RlPromptsSettings, SftDataSettings
from lgt.evaluation.settings import BenchmarkScoresSettings, BenchmarkSuitesSettings, ReportSettings
from lgt.images.settings import ImagesSettings
from lgt.images.sources import SOURCE_KINDS
from lgt.images.sources.parquet import watched_shards
from lgt.partitions import partition_key
from lgt.paths import DEFAULT_RECIPE
from lgt.questions.settings import QuestionsComposedSettings, QuestionsGroundedSettings, QuestionsSettings
from lgt.roles import Models
from lgt.settings import Strict, unique_names
from lgt.traces.settings import DifficultySettings, FourPhaseSettings, LongCotsSettings, SimpleCotsSettings
from lgt.training.settings import DpoCheckpointSettings, SftCheckpointSettings


class RecipeError(ValueError):
    """A recipe that cannot be loaded; the message says where and why."""


# one recipe model per kind in lgt.images.sources.SOURCE_KINDS, told apart by `kind`
Source = Annotated[Union[tuple(k.model for k in SOURCE_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007


class Stages(Strict):
    """`stages:`, one section per registry entry, named as its asset."""

    images: ImagesSettings = ImagesSettings()
    questions_grounded: QuestionsGroundedSettings = QuestionsGroundedSettings()
    questions_composed: QuestionsComposedSettings = QuestionsComposedSettings()
    questions: QuestionsSettings = QuestionsSettings()
    simple_cots: SimpleCotsSettings = SimpleCotsSettings()
    long_cots: LongCotsSettings = LongCotsSettings()
    four_phase: FourPhaseSettings = FourPhaseSettings()
    difficulty: DifficultySettings = DifficultySettings()
    sft_data: SftDataSettings = SftDataSettings()
    dpo_pairs: DpoPairsSettings = DpoPairsSettings()
    rl_prompts: RlPromptsSettings = RlPromptsSettings()
    exports: ExportsSettings = ExportsSettings()
    sft_checkpoint: SftCheckpointSettings = SftCheckpointSettings()
    dpo_checkpoint: DpoCheckpointSettings = DpoCheckpointSettings()
    benchmark_suites: BenchmarkSuitesSettings = BenchmarkSuitesSettings()
    benchmark_scores: BenchmarkScoresSettings = BenchmarkScoresSettings()
    report: ReportSettings = ReportSettings()


class Automation(Strict):
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


class Recipe(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    sources: list[Source] = Field(min_length=1)
    models: Models
    base_model: BaseModelSettings = BaseModelSettings()
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
        keys = []
        for s in self.sources:
            shards = watched_shards(s.path) if getattr(s, "watch", False) else range(s.shards)
            keys += [partition_key(s.name, i) for i in shards]
        return keys

    def digest(self) -> str:
        """Content hash of the validated recipe: the lineage stamp for every artifact."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


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
    if err["type"] == "extra_forbidden" and err["loc"] and err["loc"][-1] in _RENAMED:
        hint = f" ({err['loc'][-1]} became {_RENAMED[err['loc'][-1]]})"
    return f"  {where}{path or '<top>'}: got {got}; expected: {err['msg']}{hint}"


# keys an older recipe may still use: per-shard counts became shares (an edit elsewhere in a shard no longer
# changes what is sent), and questions_composed.kinds became compositions
_SHARE = "`share`: a fraction 0-1 of the shard's items, kept by a hash of the id"
_RENAMED = {"max_questions": _SHARE, "max_cots": _SHARE, "max_images": _SHARE, "kinds": "`compositions`"}


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
