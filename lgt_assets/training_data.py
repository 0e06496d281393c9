"""The training sets of one shard: `sft_data`, `dpo_pairs` and `rl_prompts`, split by synthesis stage."""

import dagster as dg
import pyarrow as pa
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.question_rows import StageResult
from lgt.recipe import Recipe
from lgt.storage import table_digest
from lgt.training_data import build_dpo, build_rl, build_sft
from lgt_assets.images import schema_check
from lgt_assets.traces import stage_metadata
from lgt_assets.versions import stage_code_version
from schemas.traces import FOUR_PHASE_ARROW, DpoSchema, RlSchema, SftSchema


def _metadata(result: StageResult, label: str) -> dict:
    by_split = {s: result.table.filter(pa.compute.equal(result.table["split"], s)).num_rows for s in ("stage1", "stage2")}
    return {**stage_metadata(result, label), "by_split": dg.MetadataValue.json(by_split)}


def _dataset_asset(recipe: Recipe, partitions: dg.PartitionsDefinition, *, name: str, ins: list[str], schema,
                   description: str, label: str, build) -> dg.AssetsDefinition:
    stage = getattr(recipe.stages, name)

    @dg.asset(
        name=name,
        partitions_def=partitions,
        group_name="datasets",
        io_manager_key="parquet_io",
        ins={i: dg.AssetIn() for i in ins},
        description=description,
        metadata={"dagster/column_schema": pandera_schema_to_dagster_type(schema).metadata["schema"]},
        code_version=stage_code_version(recipe, stage, [], []),
        check_specs=[dg.AssetCheckSpec(f"{name}_schema", asset=name, blocking=True, description=f"pandera {schema.__name__}")],
    )
    def _asset(context: dg.AssetExecutionContext, **inputs: pa.Table):
        result = build(inputs, stage)
        context.log.info(f"{context.partition_key}: {result.funnel}; rejects {dict(result.rejects)}")
        yield dg.Output(result.table, data_version=dg.DataVersion(table_digest(result.table)),
                        metadata=_metadata(result, label))
        yield schema_check(f"{name}_schema", name, schema, result.table)

    return _asset


def build_dataset_assets(recipe: Recipe, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    four_phase = recipe.stages.four_phase.enabled
    sft_ins = ["questions", "simple_cots", "long_cots", "difficulty"] + (["four_phase"] if four_phase else [])
    empty_four_phase = FOUR_PHASE_ARROW.empty_table()
    return [
        _dataset_asset(
            recipe, partitions, name="sft_data", ins=sft_ins, schema=SftSchema, label="by_category",
            description="LPT SFT: O and O->O drawn by length rank per question, X->O matched in count by added length; "
                        "plus consistent four-phase traces. <think> … </think> <answer> … </answer>.",
            build=lambda i, st: build_sft(i["questions"], i["simple_cots"], i["long_cots"],
                                          i.get("four_phase", empty_four_phase), i["difficulty"], st)),
        _dataset_asset(
            recipe, partitions, name="dpo_pairs", ins=["questions", "simple_cots", "long_cots"], schema=DpoSchema,
            label="by_rule", description="LPT preference pairs by rule, deduplicated on chosen, then on rejected.",
            build=lambda i, st: build_dpo(i["questions"], i["simple_cots"], i["long_cots"], st)),
        _dataset_asset(
            recipe, partitions, name="rl_prompts", ins=["questions", "difficulty"], schema=RlSchema,
            label="by_stage_and_family", description="GRPO/RLVR prompts: question, gold letter, requested answer format, pass rate.",
            build=lambda i, st: build_rl(i["questions"], i["difficulty"], st)),
    ]
