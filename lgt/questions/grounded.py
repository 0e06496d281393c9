"""Stage 1, `questions_grounded`: programmatic families plus LLM-written grounded MCQs for one shard.

The LLM path (LGT stage 1): a prompt with the dense caption and the object
list (normalised boxes) asks for object-centric MCQs in a tagged format. An
item is kept only if it parses, exactly one option equals its answer, the
question does not contain the answer, it is not a duplicate and, where the
recipe asks, the verifier role picks the same option. Every reject is counted
by reason; a small model whose outputs mostly fail to parse costs yield, not
a crash.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa

from lgt.answers import read_choice
from lgt.engines import EngineFor, Request
from lgt.ids import in_share
from lgt.images.stand_in import object_list
from lgt.prompts import load_prompt
from lgt.questions.balance import balance
from lgt.questions.families import Draft, FamilyPlan, Rules, View, generate, objects_of
from lgt.questions.parse import parse_mcqs
from lgt.questions.rewrite import REWRITE_PROMPT, rewrite_questions
from lgt.questions.rows import config_version, dedupe, item_row, items_table, question_id
from lgt.questions.settings import QuestionsGroundedSettings
from lgt.questions.verify import solve_request, verifier_view
from lgt.results import StageResult, timed
from lgt.roles import Models

WRITER_PROMPT = "questions_grounded.j2"
WRITER_PREFILL = "<question>"  # starting the reply in the format lifts the parse rate of small models


def rules_of(settings: QuestionsGroundedSettings, exhaustive: bool = True) -> Rules:
    m = settings.margins
    return Rules(
        attributes={k: (a.noun, list(a.values)) for k, a in settings.attributes.items()},
        position_gap=m.position_gap,
        area_ratio=m.area_ratio,
        distance_ratio=m.distance_ratio,
        extreme_gap=m.extreme_gap,
        labels=tuple(settings.labels),
        min_area=settings.min_object_area,
        uncountable=frozenset(settings.uncountable_labels),
        exhaustive=exhaustive,
    )


def plans_of(settings: QuestionsGroundedSettings) -> dict[str, FamilyPlan]:
    return {f: FamilyPlan(spec.max_per_image, settings.phrasings(f)) for f, spec in settings.families.items()}


def templates_version(settings: QuestionsGroundedSettings) -> str:
    return config_version(
        "templates",
        {f: [p.max_per_image, list(p.phrasings)] for f, p in plans_of(settings).items()},
        settings.model_dump(
            mode="json",
            include={"attributes", "labels", "margins", "compose_support", "min_object_area", "uncountable_labels"},
        ),
    )


def view_of(row: dict[str, Any], rules: Rules) -> View:
    return View(row["image_id"], row["width"], row["height"], objects_of(row), rules, row.get("caption") or "")


def template_rows(
    rows: list[dict[str, Any]],
    settings: QuestionsGroundedSettings,
    source: str,
    skips: Counter,
    exhaustive: bool = True,
) -> list[dict[str, Any]]:
    """Every programmatic family on every image of the shard (`exhaustive`: the source boxes every instance)."""
    rules, plans, version = rules_of(settings, exhaustive), plans_of(settings), templates_version(settings)
    shard_labels = sorted({o["label"] for r in rows for o in r["objects"]})
    out = []
    for row in rows:
        view = view_of(row, rules)
        for d in generate(view, plans, settings.seed, skips, shard_labels, settings.compose_support):
            out.append(item_row(d, row["image_id"], source, stage=1, origin="template", prompt_version=version))
    return balance(out, settings.seed, skips)


def llm_rows(
    rows: list[dict[str, Any]],
    settings: QuestionsGroundedSettings,
    models: Models,
    source: str,
    engine_for: EngineFor,
    rejects: Counter,
    funnel: dict[str, int],
) -> list[dict[str, Any]]:
    cfg = settings.llm
    sent = [r for r in rows if in_share(cfg.share, r["image_id"])]
    writer = load_prompt(WRITER_PROMPT)
    keys = list(settings.attributes) or None
    sampling = cfg.sampling_for(models)
    requests = [
        Request(
            messages=[
                {
                    "role": "user",
                    "content": writer.render(
                        caption=r["caption"], objects=object_list(r, keys), n_questions=cfg.questions_per_image
                    ),
                }
            ],
            prefill=WRITER_PREFILL,
            sampling=sampling,
        )
        for r in sent
    ]
    engine = engine_for(cfg.role)
    results = engine.generate(requests)
    funnel["llm/images"] = len(sent)
    funnel["llm/outputs"] = sum(len(res.samples) for res in results)
    drafts: list[tuple[dict[str, Any], Draft, str]] = []
    for row, res in zip(sent, results):
        ids = {o["object_id"] for o in row["objects"]}
        for s in res.samples:
            if not s.ok:
                rejects["call_failed"] += 1
                continue
            items, why = parse_mcqs(WRITER_PREFILL + s.text)
            rejects.update(why)
            for m in items:
                answer = m.options[m.answer_index]
                d = Draft(
                    "llm",
                    m.question,
                    answer,
                    [o for i, o in enumerate(m.options) if i != m.answer_index],
                    [i for i in m.object_ids if i in ids],
                    {"options": list(m.options), "answer_index": m.answer_index, "objects_named": list(m.object_ids)},
                    reasoning_type=m.reasoning_type or "Unspecified",
                )
                drafts.append((row, d, s.key))
    funnel["llm/parsed"] = len(drafts)
    out = [
        item_row(
            d,
            row["image_id"],
            source,
            stage=1,
            origin="llm",
            prompt_version=writer.version,
            model=engine.backend.model_id,
            call_keys=[key],
        )
        for row, d, key in drafts
    ]
    out = dedupe(out, rejects)
    if cfg.verify and out:
        out = verified(out, {r["image_id"]: r for r in sent}, models, engine_for, rejects, keys)
    funnel["llm/kept"] = len(out)
    return out


def verified(
    items: list[dict[str, Any]],
    rows_by_id: dict[str, dict],
    models: Models,
    engine_for: EngineFor,
    rejects: Counter,
    keys=None,
) -> list[dict[str, Any]]:
    """Keep the items whose gold option the verifier role also picks, the options shuffled (`verifier_view`)."""
    views = []
    for it in items:
        spec = json.loads(it["spec"])
        views.append(verifier_view(it["question"], spec["options"], spec["answer_index"]))
    reqs = [
        solve_request(rows_by_id[it["image_id"]], it["question"], options, models.verifier.sampling, keys)
        for it, (options, _) in zip(items, views)
    ]
    kept = []
    for it, (options, gold), res in zip(items, views, engine_for("verifier").generate(reqs)):
        s = res.samples[0]
        if not s.ok:
            rejects["verifier_failed"] += 1
        elif read_choice(s.text, options) != gold:
            rejects["verifier_disagrees"] += 1
        else:
            kept.append({**it, "call_keys": it["call_keys"] + [s.key]})
    return kept


def rewritten(
    items: list[dict[str, Any]],
    rows_by_id: dict[str, dict],
    settings: QuestionsGroundedSettings,
    models: Models,
    engine_for: EngineFor,
    rejects: Counter,
    funnel: dict[str, int],
) -> list[dict[str, Any]]:
    """The template items with their verified rewrites (stage 2's path): more phrasings than the templates have."""
    drafts = [
        (rows_by_id[it["image_id"]], Draft(it["family"], it["question"], it["answer"], it["distractors"], []))
        for it in items
    ]
    outcome: Counter = Counter()
    decided = rewrite_questions(
        drafts, settings.rewrite, models, engine_for, list(settings.attributes) or None, outcome
    )
    model = engine_for(settings.rewrite.role).backend.model_id
    version = load_prompt(REWRITE_PROMPT).version
    out = []
    for it, (q, status, keys) in zip(items, decided):
        if status != "kept":
            out.append({**it, "rewrite": status, "call_keys": list(it["call_keys"]) + keys})
            continue
        out.append(
            {
                **it,
                "question_id": question_id(it["image_id"], q, it["answer"], it["distractors"]),
                "question": q,
                "templated_question": it["question"],
                "rewrite": status,
                "model": model,
                "prompt_version": f"{it['prompt_version']};{version}",
                "call_keys": list(it["call_keys"]) + keys,
            }
        )
    funnel["template/rewrites_kept"] = outcome.get("kept", 0)
    rejects.update({f"rewrite/{k}": v for k, v in outcome.items() if k != "kept"})
    return out


@timed
def build_questions_grounded(
    images: pa.Table,
    settings: QuestionsGroundedSettings,
    models: Models,
    source: str,
    engine_for: EngineFor | None,
    exhaustive: bool = True,
) -> StageResult:
    """One shard of stage 1. `engine_for(role)` is needed only when the LLM path is enabled."""
    rows = images.to_pylist()
    skips: Counter = Counter()
    rejects: Counter = Counter()
    funnel: dict[str, int] = {"images": len(rows)}
    out = template_rows(rows, settings, source, skips, exhaustive)
    funnel["template/rendered"] = len(out)
    if settings.rewrite.enabled and out:
        if engine_for is None:
            raise ValueError("questions_grounded: the rewrite is enabled but no engine was given")
        out = rewritten(out, {r["image_id"]: r for r in rows}, settings, models, engine_for, rejects, funnel)
    if settings.llm.enabled and rows:
        if engine_for is None:
            raise ValueError("questions_grounded: the LLM path is enabled but no engine was given")
        out += llm_rows(rows, settings, models, source, engine_for, rejects, funnel)
    n = len(out)
    out = dedupe(out, rejects)
    funnel["kept"] = len(out)
    if n != len(out):
        funnel["duplicates"] = n - len(out)
    families = Counter(r["family"] for r in out)
    result = StageResult(items_table(out), funnel, rejects, families)
    result.rejects.update({f"skip/{k}": v for k, v in skips.items()})
    return result
