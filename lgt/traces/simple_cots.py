"""LPT stage B, `simple_cots`: the VLM answers each question n times, its reply prefilled with <think>.

Under a thinking budget (`sampling.thinking`) the engine closes a thought that
runs out of tokens and the model answers after it; such samples are marked
`forced_close` and kept only when the recipe says so (`keep_forced`).

Each sample is parsed into its thought and answer and marked correct against
the gold option only (`lgt.answers.choice_in_answer`). Failed calls, unparseable
replies and exact duplicates (same question, same reply) are dropped and
counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lgt.answers import choice_in_answer
from lgt.engines import EngineFor, Request
from lgt.ids import content_id
from lgt.results import StageResult, timed
from lgt.traces.parse import Parsed, letter, parse_think_answer, usable
from lgt.traces.requests import question_requests
from lgt.traces.settings import SimpleCotsSettings
from schemas.traces import SIMPLE_COTS_ARROW
from schemas.vocab import simple_category

PREFILL = "<think>"


def simple_cot_requests(
    questions: pa.Table, images: pa.Table, settings: SimpleCotsSettings, keys: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], list[Request]]:
    """The questions this shard sends and one request (n samples) each."""
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    return question_requests(questions.to_pylist(), by_image, settings.share, settings.sampling, PREFILL, keys)


@timed
def build_simple_cots(
    questions: pa.Table,
    images: pa.Table,
    settings: SimpleCotsSettings,
    engine_for: EngineFor,
    keys: Sequence[str] | None = None,
) -> StageResult:
    sent, requests = simple_cot_requests(questions, images, settings, keys)
    engine = engine_for(settings.role)
    results = engine.generate(requests)
    rejects: Counter = Counter()
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for q, res in zip(sent, results):
        for j, s in enumerate(res.samples):
            if not usable(s, settings.keep_forced, rejects):
                continue
            response = PREFILL + s.text
            parsed = parse_think_answer(response)
            if not isinstance(parsed, Parsed):
                rejects[f"unparseable/{parsed}"] += 1
                continue
            if (q["question_id"], response) in seen:
                rejects["duplicate"] += 1
                continue
            seen.add((q["question_id"], response))
            choice = letter(choice_in_answer(parsed.answer, q["options"]))
            correct = choice == q["gold_letter"]
            rows.append(
                {
                    "cot_id": content_id("cot", q["question_id"], response),
                    **{k: q[k] for k in ("question_id", "image_id", "source", "stage", "family")},
                    "sample_index": j,
                    "response": response,
                    "thought": parsed.thought,
                    "answer": parsed.answer,
                    "choice": choice,
                    "gold_letter": q["gold_letter"],
                    "correct": correct,
                    "category": simple_category(correct),
                    "grounding": res.grounding,
                    "completion_tokens": s.completion_tokens,
                    "forced_close": s.forced_close,
                    "forced_continue": s.forced_continue,
                    "model": engine.backend.model_id,
                    "prompt_version": q["prompt_version"],
                    "call_key": s.key,
                }
            )
    samples = sum(len(r.samples) for r in results)
    funnel = {
        "questions": questions.num_rows,
        "sent": len(sent),
        "samples": samples,
        "kept": len(rows),
        "correct": sum(r["correct"] for r in rows),
        "forced_close": sum(r["forced_close"] for r in rows),
    }
    return StageResult(
        pa.Table.from_pylist(rows, schema=SIMPLE_COTS_ARROW), funnel, rejects, Counter(r["category"] for r in rows)
    )
