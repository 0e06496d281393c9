"""`images` and `images_quarantine`: one shard of one source, validated and stored (logic: lgt/images/)."""

from collections.abc import Callable

import dagster as dg
import pyarrow as pa

from lgt.images.sources import read_shard
from lgt.images.validate import Limits, build_shard
from lgt.partitions import split_partition_key
from lgt.preview import funnel_line, images_markdown
from lgt_assets.factory import (
    Custom,
    Metadata,
    Wiring,
    code_version,
    column_schema,
    group_of,
    partition_output,
    schema_check,
)
from schemas import IMAGES, QUARANTINE

GROUP = group_of(__name__)


def build_images_assets(w: Wiring) -> dg.AssetsDefinition:
    recipe = w.recipe
    settings = recipe.stages.images
    limits = Limits(max_pixels=settings.max_pixels, box_clip_tolerance=settings.box_clip_tolerance)
    # editing a source or this stage's settings marks the asset stale in the UI
    version = code_version(recipe, settings, [], [], [s.model_dump(mode="json") for s in recipe.sources])

    @dg.multi_asset(
        name="images_assets",
        partitions_def=w.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
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
        built = {pk: shard_outputs(pk, context.log.info) for pk in context.partition_keys}
        for i, name in ((0, "images"), (2, "images_quarantine")):
            tables = {pk: b[i] for pk, b in built.items()}
            yield partition_output(context, tables, {pk: b[i + 1] for pk, b in built.items()}, output_name=name)
        yield schema_check("images_schema", "images", IMAGES.model, pa.concat_tables(b[0] for b in built.values()))
        yield schema_check(
            "quarantine_schema", "images_quarantine", QUARANTINE.model, pa.concat_tables(b[2] for b in built.values())
        )

    def shard_outputs(pk: str, log: Callable[[str], None]) -> tuple[pa.Table, Metadata, pa.Table, Metadata]:
        """One partition: images and quarantine tables and their metadata."""
        source_name, shard = split_partition_key(pk)
        src = recipe.source(source_name)

        def progress(done: int, quarantined: int, seconds: float) -> None:
            log(f"{pk}: {done} rows read, {quarantined} quarantined, {done / seconds:.1f} rows/s")

        result = build_shard(read_shard(src, shard), limits, progress)
        images, quarantine = result.images.cast(IMAGES.arrow), result.quarantine.cast(QUARANTINE.arrow)
        reasons = result.reasons()
        funnel = {"rows": result.input_rows, "images": images.num_rows}
        log(f"{pk}: {funnel_line(funnel, reasons, dropped='quarantined')} in {result.seconds:.1f}s")
        preview = images.slice(0, settings.preview_images).to_pylist()
        images_md = {
            "dagster/row_count": images.num_rows,
            "input_rows": result.input_rows,
            "quarantined": quarantine.num_rows,
            "quarantine_by_reason": dg.MetadataValue.json(reasons),
            "objects": sum(len(o) for o in images.column("objects").to_pylist()),
            "rows_per_second": round(result.input_rows / max(result.seconds, 1e-9), 1),
            "source_kind": src.kind,
            "recipe": f"{recipe.name}@{recipe.digest()}",
            "preview": dg.MetadataValue.md(images_markdown(preview)),
        }
        quarantine_md = {"dagster/row_count": quarantine.num_rows, "by_reason": dg.MetadataValue.json(reasons)}
        return images, images_md, quarantine, quarantine_md

    return images_assets


ENTRIES = (Custom("images", build_images_assets),)
