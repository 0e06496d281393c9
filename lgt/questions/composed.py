"""Stage 2, `questions_composed`: compose stage-1 template items into multi-hop questions, optionally rewritten.

The gold answer is computed from the image's objects (`lgt.questions.compose`); an LLM rewrite
(`lgt.questions.rewrite`) may make the templated text fluent, kept only where the verifier agrees.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from lgt.engines import EngineFor
from lgt.prompts import load_prompt
from lgt.questions.compose import compose
from lgt.questions.families import Draft
from lgt.questions.grounded import rules_of, view_of
from lgt.questions.rewrite import REWRITE_PROMPT, rewrite_questions
from lgt.questions.rows import config_version, dedupe, item_row, items_table
from lgt.questions.settings import QuestionsComposedSettings, QuestionsGroundedSettings
from lgt.results import StageResult, timed
from lgt.roles import Models


def _composed_drafts(
    rows: list[dict[str, Any]],
    grounded: pa.Table,
    stage1: QuestionsGroundedSettings,
    settings: QuestionsComposedSettings,
    skips: Counter,
    exhaustive: bool = True,
) -> list[tuple[dict, Draft]]:
    by_image: dict[str, list[dict]] = defaultdict(list)
    for it in grounded.to_pylist():
        if it["origin"] == "template":
            by_image[it["image_id"]].append({**it, "spec": json.loads(it["spec"])})
    rules = rules_of(stage1, exhaustive)
    quotas = {k: v.max_per_image for k, v in settings.compositions.items()}
    out = []
    for row in rows:
        items = by_image.get(row["image_id"])
        if items:
            out += [(row, d) for d in compose(view_of(row, rules), items, quotas, settings.seed, skips)]
    return out


@timed
def build_questions_composed(
    images: pa.Table,
    grounded: pa.Table,
    settings: QuestionsComposedSettings,
    stage1: QuestionsGroundedSettings,
    models: Models,
    source: str,
    engine_for: EngineFor | None,
    exhaustive: bool = True,
) -> StageResult:
    skips: Counter = Counter()
    drafts = _composed_drafts(
        images.select(["image_id", "width", "height", "caption", "objects"]).to_pylist(),
        grounded,
        stage1,
        settings,
        skips,
        exhaustive,
    )
    # hashed under the key's first name, `kinds`, so the rows' versions did not change when it was renamed
    quotas = settings.model_dump(mode="json", include={"compositions"})["compositions"]
    version = config_version("compose", {"kinds": quotas, "seed": settings.seed})
    funnel: dict[str, int] = {"images": images.num_rows, "composed": len(drafts)}
    outcome: Counter = Counter()
    if settings.rewrite.enabled and drafts:
        if engine_for is None:
            raise ValueError("questions_composed: the rewrite is enabled but no engine was given")
        full = {r["image_id"]: r for r in images.to_pylist()}  # the rewrite's verifier needs the image bytes
        drafts = [(full[row["image_id"]], d) for row, d in drafts]
        decided = rewrite_questions(
            drafts, settings.rewrite, models, engine_for, list(stage1.attributes) or None, outcome
        )
        model = engine_for(settings.rewrite.role).backend.model_id
        rewrite_version = load_prompt(REWRITE_PROMPT).version
    else:
        decided = [(d.question, "", []) for _, d in drafts]
        model, rewrite_version = "", ""
    out = [
        item_row(
            d,
            row["image_id"],
            source,
            stage=2,
            origin="composed",
            prompt_version=f"{version};{rewrite_version}" if status == "kept" else version,
            model=model if status == "kept" else "",
            call_keys=keys,
            templated=d.question,
            rewrite=status,
            question=q,
        )
        for (row, d), (q, status, keys) in zip(drafts, decided)
    ]
    rejects: Counter = Counter({f"skip/{k}": v for k, v in skips.items()})
    out = dedupe(out, rejects)
    funnel["kept"] = len(out)
    if outcome:
        funnel["rewrites_kept"] = outcome.get("kept", 0)
    rejects.update({f"rewrite/{k}": v for k, v in outcome.items() if k != "kept"})
    return StageResult(items_table(out), funnel, rejects, Counter(r["family"] for r in out))
