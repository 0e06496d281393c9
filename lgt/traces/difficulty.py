"""MMFR difficulty, `difficulty`: the small solver answers each question k times; pass rate = correct / k.

The attempt's choice is read with `lgt.answers.read_choice` (the <answer> block
after the thought first, then "the answer is …"), the reader benchmarks use: a
small solver seldom keeps to the tag format, and a reply naming several options,
or a thought that never closed, counts as wrong. A
question with a failed call gets no pass rate (counted), never a made-up one.

With `blind`, the small solver also answers each question once from its text alone (no image, no stand-in):
the bias audit's model baseline (`blind_choice`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lgt.answers import read_choice
from lgt.engines import EngineFor, Request
from lgt.results import StageResult, timed
from lgt.traces.parse import letter
from lgt.traces.requests import question_requests
from lgt.traces.settings import DifficultySettings
from schemas.traces import DIFFICULTY_ARROW


def pass_rate_histogram(rates: list[float], k: int) -> dict[str, int]:
    """Questions per possible pass rate 0/k … k/k, every bin listed (an empty bin says something too)."""
    counts = Counter(round(r * k) for r in rates)
    return {f"{i}/{k}": counts.get(i, 0) for i in range(k + 1)}


def blind_request(question: dict[str, Any], settings: DifficultySettings) -> Request:
    """The question and its options alone, no image and no stand-in; one greedy attempt, no thinking budget."""
    sampling = settings.sampling.model_copy(update={"n": 1, "temperature": 0.0, "thinking": None})
    messages = [
        {"role": "system", "content": question["system_prompt"]},
        {"role": "user", "content": question["user_prompt"]},
    ]
    return Request(messages=messages, sampling=sampling)


@timed
def build_difficulty(
    questions: pa.Table,
    images: pa.Table,
    settings: DifficultySettings,
    engine_for: EngineFor,
    keys: Sequence[str] | None = None,
) -> StageResult:
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    prefill = "<think>" if settings.sampling.thinking else ""  # a budgeted attempt thinks first, then answers
    sent, requests = question_requests(
        questions.to_pylist(), by_image, settings.share, settings.sampling, prefill, keys
    )
    engine = engine_for(settings.role)
    blind = [blind_request(q, settings) for q in sent] if settings.blind else []
    results = engine.generate(requests + blind)  # one batch: the blind attempts share the model's load
    results, blind_results = results[: len(requests)], results[len(requests) :]
    k = settings.sampling.n
    rejects: Counter = Counter()
    rows: list[dict[str, Any]] = []
    for i, (q, res) in enumerate(zip(sent, results)):
        failed = [s.error for s in res.samples if not s.ok]
        if failed:
            rejects[f"call_failed/{failed[0]}"] += 1
            continue
        choices = [letter(read_choice(prefill + s.text, q["options"])) for s in res.samples]
        blind_choice, blind_keys = None, []
        if blind_results:
            b = blind_results[i].samples[0]
            if b.ok:
                blind_choice, blind_keys = letter(read_choice(b.text, q["options"])), [b.key]
            else:
                rejects[f"blind_call_failed/{b.error}"] += 1
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
                "blind_choice": blind_choice,
                "model": engine.backend.model_id,
                "call_keys": [s.key for s in res.samples] + blind_keys,
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
    if settings.blind:
        by_id = {q["question_id"]: q for q in sent}
        blind_rows = [r for r in rows if r["blind_choice"] is not None]
        funnel["blind_attempts"] = len(blind_rows)
        funnel["blind_correct"] = sum(r["blind_choice"] == by_id[r["question_id"]]["gold_letter"] for r in blind_rows)
    return StageResult(
        pa.Table.from_pylist(rows, schema=DIFFICULTY_ARROW),
        funnel,
        rejects,
        Counter(pass_rate_histogram([r["pass_rate"] for r in rows], k)),
    )
