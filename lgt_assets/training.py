"""`sft_checkpoint` and `dpo_checkpoint` (logic: lgt/training/): TRL on the exported TRL files, in a subprocess.

Each asset's value is one row naming the checkpoint folder and what training cost; the scores read the folder
from it. Pool `gpu`: one training job at a time, on the machine's accelerators (or its cores).
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from lgt.base_model import base_model_path
from lgt.engines.checkpoint import checkpoint_revision
from lgt.plots import loss_curve_png, png_markdown
from lgt.training.checkpoints import train_checkpoint
from lgt.training.job import dpo_phases, sft_phases
from lgt_assets.factory import MODEL_RETRIES, Custom, Wiring, code_version, group_of

GROUP = group_of(__name__)

CHECKPOINT_ARROW = pa.schema(
    [
        ("path", pa.string()),
        ("revision", pa.string()),
        ("base_model", pa.string()),
        ("data_version", pa.string()),
        ("steps", pa.int64()),
        ("tokens_seen", pa.int64()),
        ("wall_seconds", pa.float64()),
        ("final_loss", pa.float64()),
    ]
)


def export_dir(w: Wiring) -> str:
    return os.path.join(w.home, "exports", w.recipe.stages.exports.name or w.recipe.name)


def checkpoint_output(name: str, path: Path, metrics: dict[str, Any], trained: bool) -> dg.Output:
    row = {
        "path": str(path),
        "revision": checkpoint_revision(path),
        "base_model": metrics["base_model"],
        "data_version": metrics["data_version"],
        "steps": metrics["steps"],
        "tokens_seen": metrics["tokens_seen"],
        "wall_seconds": metrics["wall_seconds"],
        "final_loss": metrics["final_loss"],
    }
    curve = loss_curve_png([tuple(p) for p in metrics["losses"]], f"{name}: training loss")
    return dg.Output(
        pa.Table.from_pylist([row], schema=CHECKPOINT_ARROW),
        data_version=dg.DataVersion(row["revision"]),
        metadata={
            "checkpoint": dg.MetadataValue.path(str(path)),  # "path" is the IO manager's: the stored row
            "steps": row["steps"],
            "tokens_seen": row["tokens_seen"],
            "wall_seconds": round(row["wall_seconds"], 1),
            "final_loss": round(row["final_loss"], 4),
            "rows": dg.MetadataValue.json(metrics["rows"]),
            "data_version": row["data_version"],
            "trained_now": trained,  # false: the same inputs were trained before, the folder was reused
            "loss_curve": dg.MetadataValue.md(png_markdown(curve, f"{name} loss")),
        },
    )


def build_sft_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, home, settings = w.recipe, w.home, w.recipe.stages.sft_checkpoint

    @dg.asset(
        name="sft_checkpoint",
        group_name=GROUP,
        io_manager_key="parquet_io",
        ins={"exports": dg.AssetIn()},
        deps=["base_model"],
        pool="gpu",
        retry_policy=MODEL_RETRIES,
        kinds={"trl"},
        description="TRL SFTTrainer from base_model on the exported SFT sets (stage 1 and 2 mixed, or staged); "
        "the checkpoint under $LGT_HOME/checkpoints/sft_checkpoint/<version>/.",
        code_version=code_version(recipe, settings, [], [], recipe.base_model.model_dump(mode="json")),
    )
    def sft_checkpoint(context: dg.AssetExecutionContext, exports: pa.Table) -> dg.Output:
        base = base_model_path(recipe.base_model.checkpoint, home, recipe.base_model.dtype)
        phases = sft_phases(export_dir(w), settings.schedule)
        path, metrics, trained = train_checkpoint(
            "sft", "sft_checkpoint", base, phases, settings, home, context.log.info
        )
        return checkpoint_output("sft_checkpoint", path, metrics, trained)

    return sft_checkpoint


def build_dpo_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, home, settings = w.recipe, w.home, w.recipe.stages.dpo_checkpoint

    @dg.asset(
        name="dpo_checkpoint",
        group_name=GROUP,
        io_manager_key="parquet_io",
        ins={"exports": dg.AssetIn(), "sft_checkpoint": dg.AssetIn()},
        pool="gpu",
        retry_policy=MODEL_RETRIES,
        kinds={"trl"},
        description="TRL DPOTrainer from sft_checkpoint on the exported preference pairs (beta, plus the SFT loss "
        "on the chosen answer); the checkpoint under $LGT_HOME/checkpoints/dpo_checkpoint/<version>/.",
        code_version=code_version(recipe, settings, [], []),
    )
    def dpo_checkpoint(context: dg.AssetExecutionContext, exports: pa.Table, sft_checkpoint: pa.Table) -> dg.Output:
        start = Path(sft_checkpoint.column("path")[0].as_py())
        phases = dpo_phases(export_dir(w))
        path, metrics, trained = train_checkpoint(
            "dpo", "dpo_checkpoint", start, phases, settings, home, context.log.info
        )
        return checkpoint_output("dpo_checkpoint", path, metrics, trained)

    return dpo_checkpoint


ENTRIES = (
    Custom("sft_checkpoint", build_sft_asset, enabled=lambda r: r.stages.sft_checkpoint.enabled),
    Custom(
        "dpo_checkpoint",
        build_dpo_asset,
        enabled=lambda r: r.stages.sft_checkpoint.enabled and r.stages.dpo_checkpoint.enabled,
    ),
)
