"""Source loaders: each reads one shard of one source into `RawRecord`s.

Rows go to shards in contiguous ranges of the source's own order, so a shard
is a stable slice and adding shards never reads a row twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lgt.images import RawRecord


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


def read_shard(source: Any, shard: int) -> Iterator[RawRecord]:
    """The raw records of one shard of a recipe source, in source order."""
    if source.kind == "synthetic_scenes":
        from lgt.sources.synthetic import read_synthetic as read
    elif source.kind == "coco":
        from lgt.sources.coco import read_coco as read
    elif source.kind == "docci":
        from lgt.sources.docci import read_docci as read
    elif source.kind == "parquet":
        from lgt.sources.parquet import read_parquet as read
    else:  # the recipe model admits no other kind
        raise ValueError(f"unknown source kind {source.kind!r}")
    return read(source, shard)
