"""Small real input files the loader tests write: images, hashes, JSON lines."""

import hashlib
import io
import json

from PIL import Image

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
# `transformers serve --continuous-batching` reserves 60 % of free memory for its KV cache by default (13.8 GB seen
# here, OOM-killed beside a second server); 32 blocks hold the tests' short batches in about 2 GB
SMALL_KV_CACHE = ("--cb-num-blocks", "32")


def png(color=RED, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(color=GREEN, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sha32(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def write(path, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def question_shard(images_per_shard: int | None = None, recipe=None, shard: int = 0):
    """Real synthetic images of a recipe (the default one) and their real stage-1/2 questions, LLM paths off:
    (images, questions ready to send, the attribute keys). `images_per_shard`: empty, the recipe's."""
    from lgt.images.sources import read_shard
    from lgt.images.validate import build_shard
    from lgt.questions.composed import build_questions_composed
    from lgt.questions.format import build_questions
    from lgt.questions.grounded import build_questions_grounded
    from lgt.recipe import load_recipe

    recipe = recipe or load_recipe()
    src = recipe.sources[0]
    if images_per_shard is not None:
        src = src.model_copy(update={"images_per_shard": images_per_shard})
    images = build_shard(read_shard(src, shard)).images
    s = recipe.stages
    g1 = s.questions_grounded.model_copy(update={"llm": s.questions_grounded.llm.model_copy(update={"enabled": False})})
    g2 = s.questions_composed.model_copy(
        update={"rewrite": s.questions_composed.rewrite.model_copy(update={"enabled": False})}
    )
    grounded = build_questions_grounded(images, g1, recipe.models, src.name, None).table
    composed = build_questions_composed(images, grounded, g2, g1, recipe.models, src.name, None).table
    return images, build_questions(grounded, composed, s.questions).table, list(s.questions_grounded.attributes)


def question_ids(recipe, shard: int = 0) -> list[str]:
    """The question ids of one shard of a recipe, built with the stages' own code, no model calls."""
    _, questions, _ = question_shard(recipe=recipe, shard=shard)
    return questions.column("question_id").to_pylist()


def with_shares(render, *counts: int) -> str:
    """`render(*shares)`, a recipe's YAML, each share the one that sends exactly counts[i] of its first shard's
    questions (a smaller count's share nests in a larger one's)."""
    import tempfile
    from pathlib import Path

    from lgt.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(render(*[1.0] * len(counts)))
        ids = question_ids(load_recipe(path))
    return render(*[share_for(ids, k) for k in counts])


def share_for(keys, k: int) -> float:
    """The share (`lgt.ids.in_share`) that keeps exactly k of these keys: found by bisection on the share alone,
    so a test can ask for "2 questions" under the recipe's share field."""
    from lgt.ids import in_share

    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        n = sum(in_share(mid, key) for key in keys)
        if n == k:
            return mid
        lo, hi = (mid, hi) if n < k else (lo, mid)
    raise ValueError(f"no share keeps exactly {k} of {len(keys)} keys")
