"""`images` and `images_quarantine`: one shard of one source, validated and stored."""

import hashlib
import json

import dagster as dg
import pandera.errors
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.images import Limits, build_shard
from lgt.preview import images_markdown
from lgt.recipe import Recipe, split_partition_key
from lgt.sources import read_shard
from lgt.storage import table_digest
from schemas import ImagesQuarantineSchema, ImagesSchema

# built once per schema: only their column tables are used, for the UI
_COLUMNS = {
    "images": pandera_schema_to_dagster_type(ImagesSchema).metadata["schema"],
    "images_quarantine": pandera_schema_to_dagster_type(ImagesQuarantineSchema).metadata["schema"],
}


def schema_check(check_name: str, asset: str, schema, table) -> dg.AssetCheckResult:
    """Run a pandera model over a table; failures become check metadata, not exceptions."""
    try:
        schema.validate(table.to_pandas(), lazy=True)
    except pandera.errors.SchemaErrors as e:
        cases = e.failure_cases.head(20)
        return dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "failures": len(e.failure_cases),
                "first failures": dg.MetadataValue.md(cases.to_markdown(index=False)),
            },
        )
    return dg.AssetCheckResult(check_name=check_name, asset_key=asset, passed=True, metadata={"rows": table.num_rows})


def build_images_assets(recipe: Recipe, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    stage = recipe.stages.images
    limits = Limits(max_pixels=stage.max_pixels, box_clip_tolerance=stage.box_clip_tolerance)
    # editing a source or this stage's settings marks the asset stale in the UI
    code_version = hashlib.sha256(
        json.dumps([s.model_dump(mode="json") for s in recipe.sources] + [stage.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()[:16]

    @dg.multi_asset(
        name="images_assets",
        partitions_def=partitions,
        group_name="images",
        outs={
            "images": dg.AssetOut(
                io_manager_key="parquet_io",
                description="Canonical captioned images with object boxes, one row per image (HF image struct).",
                metadata={"dagster/column_schema": _COLUMNS["images"]},
                code_version=code_version,
            ),
            "images_quarantine": dg.AssetOut(
                io_manager_key="parquet_io",
                description="Input rows that failed validation, with the file, row, field and reason.",
                metadata={"dagster/column_schema": _COLUMNS["images_quarantine"]},
                code_version=code_version,
            ),
        },
        check_specs=[
            dg.AssetCheckSpec("images_schema", asset="images", blocking=True, description="pandera ImagesSchema"),
            dg.AssetCheckSpec(
                "quarantine_schema", asset="images_quarantine", blocking=True, description="pandera ImagesQuarantineSchema"
            ),
        ],
    )
    def images_assets(context: dg.AssetExecutionContext):
        source_name, shard = split_partition_key(context.partition_key)
        src = recipe.source(source_name)

        def progress(done: int, quarantined: int, seconds: float) -> None:
            context.log.info(f"{context.partition_key}: {done} rows read, {quarantined} quarantined, {done / seconds:.1f} rows/s")

        result = build_shard(read_shard(src, shard), limits, progress)
        images, quarantine = result.images, result.quarantine
        reasons = result.reasons()
        context.log.info(
            f"{context.partition_key}: {result.input_rows} rows -> {images.num_rows} images, "
            f"{quarantine.num_rows} quarantined{' ' + str(reasons) if reasons else ''} in {result.seconds:.1f}s"
        )
        preview = images.slice(0, stage.preview_images).to_pylist()
        yield dg.Output(
            images,
            output_name="images",
            data_version=dg.DataVersion(table_digest(images)),
            metadata={
                "dagster/row_count": images.num_rows,
                "input_rows": result.input_rows,
                "quarantined": quarantine.num_rows,
                "quarantine_by_reason": dg.MetadataValue.json(reasons),
                "objects": sum(len(o) for o in images.column("objects").to_pylist()),
                "rows_per_second": round(result.input_rows / max(result.seconds, 1e-9), 1),
                "source_kind": src.kind,
                "recipe": f"{recipe.name}@{recipe.digest()}",
                "preview": dg.MetadataValue.md(images_markdown(preview)),
            },
        )
        yield dg.Output(
            quarantine,
            output_name="images_quarantine",
            data_version=dg.DataVersion(table_digest(quarantine)),
            metadata={"dagster/row_count": quarantine.num_rows, "by_reason": dg.MetadataValue.json(reasons)},
        )
        yield schema_check("images_schema", "images", ImagesSchema, images)
        yield schema_check("quarantine_schema", "images_quarantine", ImagesQuarantineSchema, quarantine)

    return images_assets
