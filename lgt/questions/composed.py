"""Stage 2, `questions_composed`: compose stage-1 template items into multi-hop questions, optionally rewritten.

The gold answer is computed from the image's objects (`lgt.questions.compose`).
An LLM rewrite may make the templated text fluent; it is kept only if it
parses, does not contain the answer, and the verifier role, reading the
rewritten question, picks the gold option. Otherwise the templated form stays
and the row records why (`rewrite`).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from lgt.engines import EngineFor, Request
from lgt.prompts import load_prompt
from lgt.questions.compose import compose
from lgt.questions.families import Draft
from lgt.questions.grounded import rules_of, solve_request, view_of
from lgt.questions.parse import extract_choice, normalize
from lgt.questions.rows import config_version, dedupe, item_row, items_table
from lgt.recipe import Models, QuestionsComposedStage, QuestionsGroundedStage
from lgt.results import StageResult

REWRITE_PROMPT = "question_rewrite.j2"
_QUESTION = re.compile(r"<question>\s*(.*?)\s*</question>", re.IGNORECASE | re.DOTALL)


def parse_rewrite(text: str, finished: bool = False) -> str | None:
    """The last <question>…</question> of a rewrite, whitespace collapsed.

    `finished`: the model ended its reply itself, so an unclosed final
    <question> runs to the end of the text (it stopped after the question).
    """
    found = _QUESTION.findall(text)
    if not found and finished:
        found = re.findall(r"<question>\s*(.*)$", text, re.IGNORECASE | re.DOTALL)
    q = " ".join(found[-1].split()) if found else ""
    return q or None


def leaks_answer(question: str, answer: str) -> bool:
    a = normalize(answer)
    return bool(a) and re.search(rf"(?<!\w){re.escape(a)}(?!\w)", normalize(question)) is not None


def _composed_drafts(
    rows: list[dict[str, Any]],
    grounded: pa.Table,
    stage1: QuestionsGroundedStage,
    stage: QuestionsComposedStage,
    skips: Counter,
) -> list[tuple[dict, Draft]]:
    by_image: dict[str, list[dict]] = defaultdict(list)
    for it in grounded.to_pylist():
        if it["origin"] == "template":
            by_image[it["image_id"]].append({**it, "spec": json.loads(it["spec"])})
    rules = rules_of(stage1)
    quotas = {k: v.max_per_image for k, v in stage.kinds.items()}
    out = []
    for row in rows:
        items = by_image.get(row["image_id"])
        if items:
            out += [(row, d) for d in compose(view_of(row, rules), items, quotas, stage.seed, skips)]
    return out


def _rewrite(
    drafts: list[tuple[dict, Draft]],
    stage: QuestionsComposedStage,
    stage1: QuestionsGroundedStage,
    models: Models,
    engine_for: EngineFor,
    outcome: Counter,
) -> list[tuple[str, str, list[str]]]:
    """(question, rewrite status, call keys) per draft."""
    prompt = load_prompt(REWRITE_PROMPT)
    sampling = stage.rewrite.sampling_for(models)
    reqs = [
        Request(
            messages=[{"role": "user", "content": prompt.render(question=d.question)}],
            prefill="<question>",
            sampling=sampling,
        )
        for _, d in drafts
    ]
    results = engine_for(stage.rewrite.role).generate(reqs)
    decided: list[tuple[str, str, list[str]]] = []
    pending: list[tuple[int, str, list[str], list[str]]] = []  # (draft index, rewrite, call keys, options)
    for i, ((_, d), res) in enumerate(zip(drafts, results)):
        s = res.samples[0]
        q = parse_rewrite("<question>" + s.text, finished=s.finish_reason == "stop") if s.ok else None
        status = (
            "rewrite_failed"
            if not s.ok
            else "rewrite_unparseable"
            if q is None
            else "rewrite_unchanged"
            if normalize(q) == normalize(d.question)
            else "rewrite_leaks_answer"
            if leaks_answer(q, d.answer)
            else "verifying"
        )
        decided.append((d.question, status, [s.key] if s.key else []))
        if status == "verifying":
            options = [d.answer, *d.distractors]
            random.Random(f"lgt-verify:{d.question}").shuffle(options)
            pending.append((i, q, [s.key], options))
    keys = list(stage1.attributes) or None
    verdicts = (
        engine_for("verifier").generate(
            [solve_request(drafts[i][0], q, options, models.verifier.sampling, keys) for i, q, _, options in pending]
        )
        if pending
        else []
    )
    for (i, q, call_keys, options), res in zip(pending, verdicts):
        s, d = res.samples[0], drafts[i][1]
        if not s.ok:
            decided[i] = (d.question, "verifier_failed", call_keys)
        elif extract_choice(s.text, options) != options.index(d.answer):
            decided[i] = (d.question, "verifier_disagrees", call_keys + [s.key])
        else:
            decided[i] = (q, "kept", call_keys + [s.key])
    outcome.update(status for _, status, _ in decided)
    return decided


def build_questions_composed(
    images: pa.Table,
    grounded: pa.Table,
    stage: QuestionsComposedStage,
    stage1: QuestionsGroundedStage,
    models: Models,
    source: str,
    engine_for: EngineFor | None,
) -> StageResult:
    start = time.perf_counter()
    skips: Counter = Counter()
    drafts = _composed_drafts(
        images.select(["image_id", "width", "height", "objects"]).to_pylist(), grounded, stage1, stage, skips
    )
    version = config_version("compose", stage.model_dump(mode="json", include={"seed", "kinds"}))
    funnel: dict[str, int] = {"images": images.num_rows, "composed": len(drafts)}
    outcome: Counter = Counter()
    if stage.rewrite.enabled and drafts:
        if engine_for is None:
            raise ValueError("questions_composed: the rewrite is enabled but no engine was given")
        full = {r["image_id"]: r for r in images.to_pylist()}  # the rewrite's verifier needs the image bytes
        drafts = [(full[row["image_id"]], d) for row, d in drafts]
        decided = _rewrite(drafts, stage, stage1, models, engine_for, outcome)
        model = engine_for(stage.rewrite.role).backend.model_id
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
    return StageResult(
        items_table(out), funnel, rejects, Counter(r["family"] for r in out), time.perf_counter() - start
    )
