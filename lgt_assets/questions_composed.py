"""`questions_composed`: stage-2 multi-hop questions composed from stage-1 items of one shard."""

import dagster as dg
import pyarrow as pa

from lgt.questions_composed import REWRITE_PROMPT, build_questions_composed
from lgt.questions_grounded import SOLVE_PROMPT
from lgt.recipe import Recipe, split_partition_key
from lgt.storage import table_digest
from lgt_assets.images import schema_check
from lgt_assets.llm import RoleEngines
from lgt_assets.questions_grounded import COLUMNS, question_metadata
from lgt_assets.versions import stage_code_version
from resources import Engines
from schemas import QuestionItemsSchema


def build_questions_composed_asset(recipe: Recipe, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    stage, stage1 = recipe.stages.questions_composed, recipe.stages.questions_grounded
    roles = [stage.rewrite.role, "verifier"] if stage.rewrite.enabled else []
    prompts = [REWRITE_PROMPT, SOLVE_PROMPT] if stage.rewrite.enabled else []

    @dg.asset(
        name="questions_composed",
        partitions_def=partitions,
        group_name="questions",
        io_manager_key="parquet_io",
        ins={"images": dg.AssetIn(), "questions_grounded": dg.AssetIn()},
        deps=["base_model"] if roles else [],
        description="Stage 2: chain, combine and conditional questions composed from stage-1 items; gold from metadata.",
        metadata={"dagster/column_schema": COLUMNS},
        code_version=stage_code_version(recipe, stage, roles, prompts, stage1.model_dump(mode="json")),
        check_specs=[dg.AssetCheckSpec("questions_composed_schema", asset="questions_composed", blocking=True,
                                       description="pandera QuestionItemsSchema: four distinct options, parents = hops")],
    )
    def questions_composed(context: dg.AssetExecutionContext, images: pa.Table, questions_grounded: pa.Table,
                           engines: Engines):
        source, _ = split_partition_key(context.partition_key)
        engine_for = RoleEngines(engines, context)
        result = build_questions_composed(images, questions_grounded, stage, stage1, recipe.models, source, engine_for)
        context.log.info(f"{context.partition_key}: {result.funnel} in {result.seconds:.1f}s")
        yield dg.Output(result.table, data_version=dg.DataVersion(table_digest(result.table)),
                        metadata={**question_metadata(result, images, stage.preview_questions), **engine_for.metadata()})
        yield schema_check("questions_composed_schema", "questions_composed", QuestionItemsSchema, result.table)

    return questions_composed
