"""`images` and `images_quarantine`: one shard of one source, validated and stored (logic: lgt/images/)."""

import dagster as dg

from lgt.images.sources import read_shard
from lgt.images.validate import Limits, build_shard
from lgt.preview import images_markdown
from lgt.recipe import split_partition_key
from lgt.storage import table_digest
from lgt_assets.factory import Custom, Wiring, code_version, column_schema, group_of, schema_check
from schemas import IMAGES, QUARANTINE

GROUP = group_of(__name__)


def build_images_assets(w: Wiring) -> dg.AssetsDefinition:
    recipe = w.recipe
    stage = recipe.stages.images
    limits = Limits(max_pixels=stage.max_pixels, box_clip_tolerance=stage.box_clip_tolerance)
    # editing a source or this stage's settings marks the asset stale in the UI
    version = code_version(recipe, stage, [], [], [s.model_dump(mode="json") for s in recipe.sources])

    @dg.multi_asset(
        name="images_assets",
        partitions_def=w.partitions,
        group_name=GROUP,
        outs={
            "images": dg.AssetOut(
                io_manager_key="parquet_io",
                description="Canonical captioned images with object boxes, one row per image (HF image struct).",
                metadata={"dagster/column_schema": column_schema(IMAGES.model)},
                code_version=version,
            ),
            "images_quarantine": dg.AssetOut(
                io_manager_key="parquet_io",
                description="Input rows that failed validation, with the file, row, field and reason.",
                metadata={"dagster/column_schema": column_schema(QUARANTINE.model)},
                code_version=version,
            ),
        },
        check_specs=[
            dg.AssetCheckSpec("images_schema", asset="images", blocking=True, description="pandera ImagesSchema"),
            dg.AssetCheckSpec(
                "quarantine_schema",
                asset="images_quarantine",
                blocking=True,
                description="pandera ImagesQuarantineSchema",
            ),
        ],
    )
    def images_assets(context: dg.AssetExecutionContext):
        source_name, shard = split_partition_key(context.partition_key)
        src = recipe.source(source_name)

        def progress(done: int, quarantined: int, seconds: float) -> None:
            context.log.info(
                f"{context.partition_key}: {done} rows read, {quarantined} quarantined, {done / seconds:.1f} rows/s"
            )

        result = build_shard(read_shard(src, shard), limits, progress)
        images, quarantine = result.images.cast(IMAGES.arrow), result.quarantine.cast(QUARANTINE.arrow)
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
        yield schema_check("images_schema", "images", IMAGES.model, images)
        yield schema_check("quarantine_schema", "images_quarantine", QUARANTINE.model, quarantine)

    return images_assets


ENTRIES = (Custom("images", build_images_assets),)
