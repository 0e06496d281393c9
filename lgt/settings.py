"""The base of every recipe settings model, and the helpers they share.

Each package keeps its settings in its own `settings.py` (`lgt.questions.settings`, `lgt.traces.settings`, ...);
`lgt.recipe` assembles them into `Stages` and `Recipe`. This module imports nothing of ours, so any of them can
build on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def unique_names(items: list[Any], what: str) -> list[Any]:
    """`items` unchanged when their `.name`s are unique; else the repeated names, for a validator's error."""
    names = [s.name for s in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(dupes)}")
    return items
