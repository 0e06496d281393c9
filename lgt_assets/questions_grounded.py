"""`questions_grounded`: stage-1 questions for one shard (programmatic families + LLM-written MCQs)."""

import dagster as dg
import pyarrow as pa
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.preview import funnel_markdown, questions_markdown
from lgt.questions_grounded import SOLVE_PROMPT, WRITER_PROMPT, build_questions_grounded
from lgt.recipe import Recipe, split_partition_key
from lgt.storage import table_digest
from lgt_assets.images import schema_check
from lgt_assets.llm import RoleEngines
from lgt_assets.versions import stage_code_version
from resources import Engines
from schemas import QuestionItemsSchema

COLUMNS = pandera_schema_to_dagster_type(QuestionItemsSchema).metadata["schema"]


def question_metadata(result, images: pa.Table, n_preview: int) -> dict:
    rows = result.table.to_pylist()
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    return {
        "dagster/row_count": result.table.num_rows,
        "funnel": dg.MetadataValue.md(funnel_markdown(result.funnel, dict(result.rejects))),
        "funnel_counts": dg.MetadataValue.json([[k, v] for k, v in result.funnel.items()]),  # pairs: JSON keys get sorted
        "by_family": dg.MetadataValue.json(dict(sorted(result.by_family.items()))),
        "rejects_by_reason": dg.MetadataValue.json(dict(sorted(result.rejects.items()))),
        "questions_per_second": round(result.table.num_rows / max(result.seconds, 1e-9), 1),
        "preview": dg.MetadataValue.md(questions_markdown(_spread(rows, n_preview), by_image)),
    }


def _spread(rows: list[dict], n: int) -> list[dict]:
    """Up to n rows, one family after another, so the preview shows every kind."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["family"], []).append(r)
    out: list[dict] = []
    while len(out) < n and any(by.values()):
        for fam in sorted(by):
            if by[fam] and len(out) < n:
                out.append(by[fam].pop(0))
    return out


def build_questions_grounded_asset(recipe: Recipe, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    stage = recipe.stages.questions_grounded
    prompts = [WRITER_PROMPT, SOLVE_PROMPT] if stage.llm.enabled else []
    roles = [stage.llm.role, "verifier"] if stage.llm.enabled else []

    @dg.asset(
        name="questions_grounded",
        partitions_def=partitions,
        group_name="questions",
        io_manager_key="parquet_io",
        ins={"images": dg.AssetIn()},
        deps=["base_model"] if roles else [],
        description="Stage 1: grounded object-centric MCQs from the object metadata (templates) and an LLM.",
        metadata={"dagster/column_schema": COLUMNS},
        code_version=stage_code_version(recipe, stage, roles, prompts),
        check_specs=[dg.AssetCheckSpec("questions_grounded_schema", asset="questions_grounded", blocking=True,
                                       description="pandera QuestionItemsSchema: four distinct options, ids unique")],
    )
    def questions_grounded(context: dg.AssetExecutionContext, images: pa.Table, engines: Engines):
        source, _ = split_partition_key(context.partition_key)
        engine_for = RoleEngines(engines, context)
        result = build_questions_grounded(images, stage, recipe.models, source, engine_for)
        context.log.info(f"{context.partition_key}: {result.funnel} in {result.seconds:.1f}s")
        yield dg.Output(result.table, data_version=dg.DataVersion(table_digest(result.table)),
                        metadata={**question_metadata(result, images, stage.preview_questions), **engine_for.metadata()})
        yield schema_check("questions_grounded_schema", "questions_grounded", QuestionItemsSchema, result.table)

    return questions_grounded
