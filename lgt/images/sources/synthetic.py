"""The embedded default source: seeded procedural scenes (see lgt.images.scenes)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, field_validator

from lgt.images.captions import caption
from lgt.images.scenes import generate_scene, render
from lgt.images.sources.base import SourceSettings
from lgt.images.validate import RawObject, RawRecord


class SyntheticScenesSource(SourceSettings):
    kind: Literal["synthetic_scenes"]
    exhaustive: bool = Field(True, description="the generator boxes every object it draws")
    seed: int = 0
    images_per_shard: int = Field(16, ge=1)
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    objects: tuple[int, int] = (3, 12)
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    png_compress_level: int = Field(1, ge=0, le=9)

    @field_validator("objects")
    @classmethod
    def _object_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 1 <= lo <= hi <= 24:
            raise ValueError("expected [min, max] with 1 <= min <= max <= 24")
        return v


def read_synthetic(src: SyntheticScenesSource, shard: int) -> Iterator[RawRecord]:
    if not 0 <= shard < src.shards:
        raise ValueError(f"shard {shard} is not in 0..{src.shards - 1}")
    for index in range(src.images_per_shard):
        scene = generate_scene(src.seed, shard, index, src.width, src.height, tuple(src.objects), src.difficulty)
        text = caption(scene, random.Random(f"lgt-caption:{src.seed}:{shard}:{index}"))
        source_id = f"{src.seed}:{shard}:{index}"
        yield RawRecord(
            source=src.name,
            split=src.split,
            shard=shard,
            row=index,
            file=f"synthetic_scenes(seed={src.seed})",
            source_id=source_id,
            image_bytes=render(scene, src.png_compress_level),
            image_path=f"{src.name}/{shard}/{index}.png",
            caption=text,
            objects=[
                # the size a person sees: the pixels left visible after occlusion
                RawObject(
                    label=o.label,
                    bbox=list(o.bbox),
                    attributes=o.attributes(),
                    object_id=o.object_id,
                    area=o.visible,
                    area_from="mask",
                )
                for o in scene.objects
            ],
            metadata={
                "generator": "synthetic_scenes",
                "seed": src.seed,
                "index": index,
                "difficulty": src.difficulty,
                "background": scene.background,
                "occlusions": [list(t) for t in scene.occlusions],
            },
            require_caption=True,
            raw={"seed": src.seed, "shard": shard, "index": index},
        )
