"""The one Dagster `Definitions`, generated from the recipe ($LGT_RECIPE or recipes/demo.yaml)."""

from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from lgt_assets.instance import prepare_instance

prepare_instance()
defs = build_definitions(load_recipe())
