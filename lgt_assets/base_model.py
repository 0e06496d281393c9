"""`base_model`: the checkpoint every role named `base_model` uses, and that SFT starts from."""

import dagster as dg

from lgt.base_model import base_model_path, checkpoint_revision
from lgt.recipe import Recipe
from lgt.storage import lgt_home


def build_base_model_asset(recipe: Recipe) -> dg.AssetsDefinition:
    @dg.asset(name="base_model", group_name="models", kinds={"transformers"},
              description="The embedded SmolLM2-135M-Instruct unpacked from its GGUF, or the recipe's checkpoint.")
    def base_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        path = base_model_path(recipe.base_model.checkpoint, lgt_home())
        revision = checkpoint_revision(path)
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        context.log.info(f"base model at {path} ({revision})")
        return dg.MaterializeResult(
            metadata={"path": dg.MetadataValue.path(str(path)), "revision": revision,
                      "size_mb": round(size / 2**20, 1),
                      "files": dg.MetadataValue.json(sorted(f.name for f in path.iterdir()))},
            data_version=dg.DataVersion(revision),
        )

    return base_model
