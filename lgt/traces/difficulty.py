"""MMFR difficulty, `difficulty`: the small solver answers each question k times; pass rate = correct / k.

The attempt's choice is read with `extract_choice` (the <answer> block first,
then "the answer is …"), the reader benchmarks use: a small solver seldom keeps
to the tag format, and a reply naming several options counts as wrong. A
question with a failed call gets no pass rate (counted), never a made-up one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lgt.engines import EngineFor
from lgt.questions.parse import extract_choice
from lgt.recipe import DifficultyStage
from lgt.results import StageResult
from lgt.traces.parse import letter
from lgt.traces.requests import question_requests
from schemas.traces import DIFFICULTY_ARROW


def pass_rate_histogram(rates: list[float], k: int) -> dict[str, int]:
    """Questions per possible pass rate 0/k … k/k, every bin listed (an empty bin says something too)."""
    counts = Counter(round(r * k) for r in rates)
    return {f"{i}/{k}": counts.get(i, 0) for i in range(k + 1)}


def build_difficulty(
    questions: pa.Table,
    images: pa.Table,
    stage: DifficultyStage,
    engine_for: EngineFor,
    keys: Sequence[str] | None = None,
) -> StageResult:
    start = time.perf_counter()
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    prefill = "<think>" if stage.sampling.thinking else ""  # a budgeted attempt thinks first, then answers
    sent, requests = question_requests(
        questions.to_pylist(), by_image, stage.max_questions, stage.sampling, prefill, keys
    )
    engine = engine_for(stage.role)
    results = engine.generate(requests)
    k = stage.sampling.n
    rejects: Counter = Counter()
    rows: list[dict[str, Any]] = []
    for q, res in zip(sent, results):
        failed = [s.error for s in res.samples if not s.ok]
        if failed:
            rejects[f"call_failed/{failed[0]}"] += 1
            continue
        choices = [letter(extract_choice(s.text, q["options"])) for s in res.samples]
        n_correct = sum(c == q["gold_letter"] for c in choices)
        rows.append(
            {
                **{c: q[c] for c in ("question_id", "image_id", "source", "stage", "family")},
                "k": k,
                "n_correct": n_correct,
                "pass_rate": n_correct / k,
                "pass_rate_zero": n_correct == 0,
                "pass_rate_below_1": n_correct < k,
                "choices": choices,
                "forced_attempts": sum(s.forced_close for s in res.samples),
                "model": engine.backend.model_id,
                "call_keys": [s.key for s in res.samples],
            }
        )
    funnel = {
        "questions": questions.num_rows,
        "sent": len(sent),
        "rated": len(rows),
        "pass_rate_zero": sum(r["pass_rate_zero"] for r in rows),
        "pass_rate_below_1": sum(r["pass_rate_below_1"] for r in rows),
        "forced_attempts": sum(r["forced_attempts"] for r in rows),
    }
    return StageResult(
        pa.Table.from_pylist(rows, schema=DIFFICULTY_ARROW),
        funnel,
        rejects,
        Counter(pass_rate_histogram([r["pass_rate"] for r in rows], k)),
        time.perf_counter() - start,
    )
