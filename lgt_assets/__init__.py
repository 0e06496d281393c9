"""Thin Dagster wiring generated from the stage registry (lgt_assets/registry.py) and a recipe."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

# data versions and the pandera bridge are beta in Dagster 1.13; the version is pinned
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from lgt.paths import lgt_home  # noqa: E402
from lgt.recipe import Recipe  # noqa: E402
from lgt_assets.automation import automation_definitions, shard_partitions, with_conditions  # noqa: E402
from lgt_assets.factory import Wiring  # noqa: E402
from lgt_assets.registry import REGISTRY  # noqa: E402
from resources import ParquetIOManager, engines_resource  # noqa: E402


def build_definitions(recipe: Recipe, base_path: str | None = None, registry: Sequence | None = None) -> dg.Definitions:
    """Every registry entry the recipe enables; data assets are partitioned by `<source>/<shard>`; each asset's
    automation condition, the automation sensor, the sources' schedule and, when a folder is watched, its sensor.

    The assets, the IO manager and the engines resource share one `Recipe` object and one home.
    """
    entries = tuple(REGISTRY if registry is None else registry)
    home = base_path or lgt_home()
    wiring = Wiring(recipe, shard_partitions(recipe), home, entries)
    return dg.Definitions(
        assets=with_conditions([e.build_asset(wiring) for e in entries if e.enabled(recipe)], recipe),
        resources={"parquet_io": ParquetIOManager(base_path=home), "engines": engines_resource(recipe, home)},
        **automation_definitions(recipe),
    )
