"""Partition keys: `<source>/<shard>`, one Dagster partition per shard of each recipe source."""

from __future__ import annotations


def partition_key(source: str, shard: int) -> str:
    return f"{source}/{shard}"


def split_partition_key(key: str) -> tuple[str, int]:
    source, _, shard = key.rpartition("/")
    if not source or not shard.isdigit():
        raise ValueError(f"partition key {key!r} is not <source>/<shard>")
    return source, int(shard)
