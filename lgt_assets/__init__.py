"""Thin Dagster wiring, one module per stage, generated from a recipe."""

from __future__ import annotations

import warnings

import dagster as dg

# data versions and the pandera bridge are beta in Dagster 1.13; the version is pinned
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from lgt.recipe import Recipe, recipe_path  # noqa: E402
from lgt.storage import lgt_home  # noqa: E402
from lgt_assets.base_model import build_base_model_asset  # noqa: E402
from lgt_assets.exports import build_exports_asset  # noqa: E402
from lgt_assets.images import build_images_assets  # noqa: E402
from lgt_assets.questions import build_questions_asset  # noqa: E402
from lgt_assets.questions_composed import build_questions_composed_asset  # noqa: E402
from lgt_assets.questions_grounded import build_questions_grounded_asset  # noqa: E402
from lgt_assets.traces import build_trace_assets  # noqa: E402
from lgt_assets.training_data import build_dataset_assets  # noqa: E402
from resources import Engines, ParquetIOManager  # noqa: E402


def build_definitions(recipe: Recipe, base_path: str | None = None, recipe_file: str | None = None) -> dg.Definitions:
    """Every asset the recipe asks for; data assets are partitioned by `<source>/<shard>`."""
    partitions = dg.StaticPartitionsDefinition(recipe.partition_keys())
    home = base_path or lgt_home()
    return dg.Definitions(
        assets=[
            build_base_model_asset(recipe),
            build_images_assets(recipe, partitions),
            build_questions_grounded_asset(recipe, partitions),
            build_questions_composed_asset(recipe, partitions),
            build_questions_asset(recipe, partitions),
            *build_trace_assets(recipe, partitions),
            *build_dataset_assets(recipe, partitions),
            build_exports_asset(recipe, partitions, home),
        ],
        resources={
            "parquet_io": ParquetIOManager(base_path=home),
            "engines": Engines(lgt_home=home, recipe_path=str(recipe_file or recipe_path())),
        },
    )
