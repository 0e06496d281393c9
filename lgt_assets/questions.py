"""`questions`: both stages deduplicated, options shuffled and prompts rendered, ready for the trace stages."""

import dagster as dg
import pyarrow as pa
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.questions import SYSTEM_PROMPT, USER_PROMPT, build_questions
from lgt.recipe import Recipe
from lgt.storage import table_digest
from lgt_assets.images import schema_check
from lgt_assets.questions_grounded import question_metadata
from lgt_assets.versions import stage_code_version
from schemas import QuestionsSchema

COLUMNS = pandera_schema_to_dagster_type(QuestionsSchema).metadata["schema"]


def build_questions_asset(recipe: Recipe, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    stage = recipe.stages.questions

    @dg.asset(
        name="questions",
        partitions_def=partitions,
        group_name="questions",
        io_manager_key="parquet_io",
        ins={"images": dg.AssetIn(), "questions_grounded": dg.AssetIn(), "questions_composed": dg.AssetIn()},
        description="Stage 1 and 2 questions, deduplicated, options shuffled and lettered, prompts rendered.",
        metadata={"dagster/column_schema": COLUMNS},
        code_version=stage_code_version(recipe, stage, [], [SYSTEM_PROMPT, USER_PROMPT]),
        check_specs=[dg.AssetCheckSpec("questions_schema", asset="questions", blocking=True,
                                       description="pandera QuestionsSchema: four distinct options, gold among them, ids unique")],
    )
    def questions(context: dg.AssetExecutionContext, images: pa.Table, questions_grounded: pa.Table,
                  questions_composed: pa.Table):
        result = build_questions(questions_grounded, questions_composed, stage)
        context.log.info(f"{context.partition_key}: {result.funnel}")
        meta = question_metadata(result, images, stage.preview_questions)
        meta["by_stage_and_family"] = meta.pop("by_family")
        yield dg.Output(result.table, data_version=dg.DataVersion(table_digest(result.table)), metadata=meta)
        yield schema_check("questions_schema", "questions", QuestionsSchema, result.table)

    return questions
