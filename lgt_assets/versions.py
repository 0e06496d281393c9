"""Code versions: a stage is stale in the UI when its settings, its roles' models or its prompts change."""

import hashlib
import json

from lgt.prompts import load_prompt
from lgt.recipe import Recipe


def stage_code_version(recipe: Recipe, stage, roles: list[str], prompts: list[str], *extra) -> str:
    parts = [stage.model_dump(mode="json"), [getattr(recipe.models, r).model_dump(mode="json") for r in roles],
             [load_prompt(p).version for p in prompts], list(extra)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
