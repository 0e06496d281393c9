"""The embedded default source: seeded procedural scenes (see lgt.scenes)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from lgt.images import RawObject, RawRecord
from lgt.scene_caption import caption
from lgt.scenes import generate_scene, render


def read_synthetic(src, shard: int) -> Iterator[RawRecord]:
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
                RawObject(label=o.label, bbox=list(o.bbox), attributes=o.attributes(), object_id=o.object_id)
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
