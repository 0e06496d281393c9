"""The one Dagster `Definitions`, generated from the recipe ($LGT_RECIPE or recipes/demo.yaml)."""

import warnings

import dagster as dg

# data versions and the pandera bridge are beta in Dagster 1.13; the version is pinned
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from lgt.recipe import load_recipe  # noqa: E402
from lgt_assets import build_definitions  # noqa: E402

defs = build_definitions(load_recipe())
