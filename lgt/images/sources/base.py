"""What every source shares: the recipe fields common to all kinds, and the sharding helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from lgt.settings import Strict

SOURCE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"  # it becomes a partition key and a folder name


class SourceSettings(Strict):
    """The fields of every recipe source; each kind adds `kind: Literal[<tag>]` and its own settings."""

    name: str = Field(pattern=SOURCE_NAME)
    shards: int = Field(1, ge=1, le=100_000)
    split: str = Field("train", min_length=1)
    exhaustive: bool = Field(
        False,
        description="every instance of every annotated label is boxed (true for synthetic scenes); when false, "
        "a label is named as unique only if the caption does not speak of several, and an absent label is one the "
        "caption does not mention",
    )


def shard_range(n: int, shards: int, shard: int) -> range:
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    return range(n * shard // shards, n * (shard + 1) // shards)


def first_occurrences(ids: list[Any]) -> dict[Any, int]:
    """id -> index of its first row; later rows with the same id are duplicates."""
    first: dict[Any, int] = {}
    for i, v in enumerate(ids):
        first.setdefault(v, i)
    return first


def require_dir(path: Any, what: str) -> None:
    """A missing image folder is one error for the source, not one quarantine row per image."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: the {what} does not exist or is not a folder")
