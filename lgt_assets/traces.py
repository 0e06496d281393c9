"""The trace stages: `simple_cots`, `long_cots`, `four_phase` and `difficulty`, one shard each."""

from collections.abc import Callable

import dagster as dg
import pyarrow as pa
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.difficulty import build_difficulty, pass_rate_histogram
from lgt.four_phase import JUDGE_PROMPT, build_four_phase
from lgt.four_phase import PROMPT as FOUR_PHASE_PROMPT
from lgt.long_cots import OPENING, build_long_cots
from lgt.long_cots import PROMPT as LONG_PROMPT
from lgt.preview import funnel_markdown, traces_markdown
from lgt.question_rows import StageResult
from lgt.recipe import Recipe
from lgt.simple_cots import build_simple_cots
from lgt.storage import table_digest
from lgt_assets.images import schema_check
from lgt_assets.llm import RoleEngines
from lgt_assets.versions import stage_code_version
from resources import Engines
from schemas.traces import DifficultySchema, FourPhaseSchema, LongCotsSchema, SimpleCotsSchema


def stage_metadata(result: StageResult, label: str) -> dict:
    """What every LLM stage shows: the funnel (markdown, and as numbers for the dataset card) and counts by label."""
    return {
        "dagster/row_count": result.table.num_rows,
        "funnel": dg.MetadataValue.md(funnel_markdown(result.funnel, dict(result.rejects))),
        "funnel_counts": dg.MetadataValue.json([[k, v] for k, v in result.funnel.items()]),  # pairs: JSON keys get sorted
        "rejects_by_reason": dg.MetadataValue.json(dict(sorted((+result.rejects).items()))),  # zero counts dropped
        label: dg.MetadataValue.json(dict(sorted(result.by_family.items()))),
        "seconds": round(result.seconds, 2),
    }


def _trace_asset(recipe: Recipe, partitions: dg.PartitionsDefinition, *, name: str, ins: list[str], schema,
                 description: str, check: str, roles: list[str], prompts: list[str], label: str,
                 build: Callable[..., StageResult], preview: Callable[[StageResult], dict]) -> dg.AssetsDefinition:
    stage = getattr(recipe.stages, name)
    keys = list(recipe.stages.questions_grounded.attributes)  # what a stand-in shows of each object

    @dg.asset(
        name=name,
        partitions_def=partitions,
        group_name="traces",
        io_manager_key="parquet_io",
        ins={i: dg.AssetIn() for i in ins},
        deps=["base_model"],
        pool="llm",  # one model-calling step at a time: parallel steps would fight over the cores (or the GPU)
        description=description,
        metadata={"dagster/column_schema": pandera_schema_to_dagster_type(schema).metadata["schema"]},
        code_version=stage_code_version(recipe, stage, roles, prompts, keys),
        check_specs=[dg.AssetCheckSpec(f"{name}_schema", asset=name, blocking=True, description=check)],
    )
    def _asset(context: dg.AssetExecutionContext, engines: Engines, **inputs: pa.Table):
        engine_for = RoleEngines(engines, context)
        result = build(inputs, stage, engine_for, keys)
        context.log.info(f"{context.partition_key}: {result.funnel}; rejects {dict(result.rejects)} in {result.seconds:.1f}s")
        yield dg.Output(result.table, data_version=dg.DataVersion(table_digest(result.table)),
                        metadata={**stage_metadata(result, label), **preview(result), **engine_for.metadata()})
        yield schema_check(f"{name}_schema", name, schema, result.table)

    return _asset


def _preview(text: str, label: str, n: int) -> Callable[[StageResult], dict]:
    return lambda r: {"preview": dg.MetadataValue.md(traces_markdown(r.table.slice(0, n).to_pylist(), text, label))}


def build_trace_assets(recipe: Recipe, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    s = recipe.stages
    out = [
        _trace_asset(
            recipe, partitions, name="simple_cots", ins=["images", "questions"], schema=SimpleCotsSchema,
            description="LPT stage B: the VLM's simple CoTs (n per question, prefilled <think>), marked O/X against the gold.",
            check="pandera SimpleCotsSchema: correct iff the gold letter, no duplicate replies",
            roles=[s.simple_cots.role], prompts=[], label="by_category",
            build=lambda i, st, ef, k: build_simple_cots(i["questions"], i["images"], st, ef, k),
            preview=_preview("response", "category", s.simple_cots.preview)),
        _trace_asset(
            recipe, partitions, name="long_cots", ins=["images", "questions", "simple_cots"], schema=LongCotsSchema,
            description="LPT stage C: the reasoner's expansions from a cue word, caption instead of image, leak-filtered; O->O … X->X.",
            check="pandera LongCotsSchema: the category follows both marks, the cue is in the thought",
            roles=[s.long_cots.role], prompts=[LONG_PROMPT, OPENING], label="by_category",
            build=lambda i, st, ef, k: build_long_cots(i["simple_cots"], i["questions"], i["images"], st, ef, k),
            preview=_preview("thought", "category", s.long_cots.preview)),
        _trace_asset(
            recipe, partitions, name="difficulty", ins=["images", "questions"], schema=DifficultySchema,
            description="MMFR: the small solver's pass rate over k attempts per question; the zero and below-1 subsets.",
            check="pandera DifficultySchema: pass rate = correct / k, subset flags agree",
            roles=[s.difficulty.role], prompts=[], label="pass_rate_histogram",
            build=lambda i, st, ef, k: build_difficulty(i["questions"], i["images"], st, ef, k),
            preview=lambda r: {"pass_rate_histogram_md": dg.MetadataValue.md(_histogram_md(r, s.difficulty.sampling.n))}),
    ]
    if s.four_phase.enabled:
        out.append(_trace_asset(
            recipe, partitions, name="four_phase", ins=["images", "questions"], schema=FourPhaseSchema,
            description="MMFR four-phase distillation: structure and 50-gram repetition filters, answer matched or judged.",
            check="pandera FourPhaseSchema: one think block, balanced answer tags",
            roles=[s.four_phase.role, "verifier"], prompts=[FOUR_PHASE_PROMPT, JUDGE_PROMPT], label="by_consistency",
            build=lambda i, st, ef, k: build_four_phase(i["questions"], i["images"], st, recipe.models.verifier.sampling, ef, k),
            preview=_preview("response", "is_consistent", s.four_phase.preview)))
    return out


def _histogram_md(result: StageResult, k: int) -> str:
    hist = pass_rate_histogram(result.table.column("pass_rate").to_pylist(), k)
    return "\n".join(["| pass rate | questions |", "|---|---:|", *(f"| {b} | {n} |" for b, n in hist.items())])
