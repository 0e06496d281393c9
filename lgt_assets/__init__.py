"""Thin Dagster wiring, one module per stage, generated from a recipe."""

from __future__ import annotations

import dagster as dg

from lgt.recipe import Recipe
from lgt.storage import lgt_home
from lgt_assets.images import build_images_assets
from resources import ParquetIOManager


def build_definitions(recipe: Recipe, base_path: str | None = None) -> dg.Definitions:
    """Every asset the recipe asks for, partitioned by `<source>/<shard>`."""
    partitions = dg.StaticPartitionsDefinition(recipe.partition_keys())
    return dg.Definitions(
        assets=[build_images_assets(recipe, partitions)],
        resources={"parquet_io": ParquetIOManager(base_path=base_path or lgt_home())},
    )
