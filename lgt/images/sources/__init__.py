"""Source loaders: each reads one shard of one source into `RawRecord`s.

Rows go to shards in contiguous ranges of the source's own order, so a shard
is a stable slice and adding shards never reads a row twice.

`SOURCE_KINDS` is the one table of source kinds: each pairs its recipe model
(whose `kind` Literal is the tag a recipe writes) with its reader. The recipe's
`Source` union and `read_shard` both derive from it, so a new kind is a module
with a model and a reader, plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_args

from lgt.images.sources.base import SourceSettings, first_occurrences, require_dir, shard_range
from lgt.images.sources.coco import CocoSource, read_coco
from lgt.images.sources.docci import DocciSource, read_docci
from lgt.images.sources.parquet import ParquetColumns, ParquetSource, read_parquet
from lgt.images.sources.synthetic import SyntheticScenesSource, read_synthetic
from lgt.images.validate import RawRecord

__all__ = [
    "SOURCE_KINDS",
    "CocoSource",
    "DocciSource",
    "ParquetColumns",
    "ParquetSource",
    "SourceSettings",
    "SourceKind",
    "SyntheticScenesSource",
    "first_occurrences",
    "read_shard",
    "require_dir",
    "shard_range",
]


@dataclass(frozen=True)
class SourceKind:
    """A kind of source: the recipe model that configures it and the reader of one shard."""

    model: type[SourceSettings]
    read: Callable[[Any, int], Iterator[RawRecord]]

    @property
    def tag(self) -> str:
        """The `kind:` a recipe writes, read from the model's `kind` Literal."""
        (tag,) = get_args(self.model.model_fields["kind"].annotation)
        return tag


# in the order the recipe's union lists them (pydantic's errors name the tags in this order)
SOURCE_KINDS: dict[str, SourceKind] = {
    k.tag: k
    for k in (
        SourceKind(SyntheticScenesSource, read_synthetic),
        SourceKind(CocoSource, read_coco),
        SourceKind(DocciSource, read_docci),
        SourceKind(ParquetSource, read_parquet),
    )
}


def read_shard(source: Any, shard: int) -> Iterator[RawRecord]:
    """The raw records of one shard of a recipe source, in source order."""
    kind = SOURCE_KINDS.get(source.kind)
    if kind is None:  # the recipe model admits no other kind
        raise ValueError(f"unknown source kind {source.kind!r}")
    return kind.read(source, shard)
