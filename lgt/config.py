"""Shared pieces of the recipe's pydantic models, kept apart so config models can live next to their code.

`lgt.recipe` and the source modules (`lgt.images.sources.*`) build on these; neither imports the other's models
through this module, so no import cycle arises.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Strict(BaseModel):
    """A recipe section: unknown keys are errors, and a loaded recipe cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths in a recipe are relative to the recipe file."""
    if value is None or value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) / value).resolve() if base else value
