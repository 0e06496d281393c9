"""`base_model`: the checkpoint every role named `base_model` uses and SFT starts from (logic: lgt/base_model.py)."""

import dagster as dg

from lgt.base_model import base_model_path
from lgt.engines.checkpoint import checkpoint_revision
from lgt_assets.factory import Custom, Wiring, group_of

GROUP = group_of(__name__)


def build_base_model_asset(w: Wiring) -> dg.AssetsDefinition:
    checkpoint, dtype, home = (
        w.recipe.base_model.checkpoint,
        w.recipe.base_model.dtype,
        w.home,
    )  # the same home the engines resource uses

    @dg.asset(
        name="base_model",
        group_name=GROUP,
        kinds={"transformers"},
        description="The embedded SmolLM2-135M-Instruct unpacked from its GGUF, or the recipe's checkpoint.",
    )
    def base_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        path = base_model_path(checkpoint, home, dtype)
        revision = checkpoint_revision(path)
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        context.log.info(f"base model at {path} ({revision})")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "revision": revision,
                "size_mb": round(size / 2**20, 1),
                "files": dg.MetadataValue.json(sorted(f.name for f in path.iterdir())),
            },
            data_version=dg.DataVersion(revision),
        )

    return base_model


ENTRIES = (Custom("base_model", build_base_model_asset),)
