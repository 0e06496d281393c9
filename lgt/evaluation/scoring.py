"""Scoring benchmark replies: the request each question is sent as, one scored row per question, and accuracies
with confidence intervals (Wilson score for one accuracy, Newcombe's hybrid score interval for a difference).

Wilson rather than the normal approximation because benchmark splits are small and accuracies can sit near 0 or 1,
where the normal interval leaves [0, 1] and undercovers. Newcombe's method 10 builds the difference interval from
the two Wilson intervals, so both tables of the report rest on the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import pyarrow as pa

from lgt.answers import read_choice
from lgt.engines import ImageInput, Request, Result, Sampling
from schemas.evaluation import EVAL_LETTERS, SCORES_ARROW

OVERALL = "overall"  # the task name of a benchmark's whole-split row in the summary
_COUNTS = ("n", "correct", "errors", "unreadable", "forced_close")


def eval_request(row: dict[str, Any], sampling: Sampling, prefill: str = "") -> Request:
    """A benchmark row as sent: its system prompt, then the image (if any, with its text stand-in) and the prompt;
    the reply starts with `prefill` (the answer reader reads it with the reply)."""
    content: list[dict[str, Any]] = []
    if row["image"] is not None:
        content.append({"type": "image", "image": ImageInput(row["image"], stand_in=row["stand_in"])})
    content.append({"type": "text", "text": row["user_prompt"]})
    return Request(
        messages=[{"role": "system", "content": row["system_prompt"]}, {"role": "user", "content": content}],
        prefill=prefill,  # empty: a thinking budget in `sampling` opens the thought itself
        sampling=sampling,
    )


def score_rows(
    rows: Sequence[dict[str, Any]], results: Sequence[Result], model: str, revision: str, prefill: str = ""
) -> pa.Table:
    """One SCORES_ARROW row per benchmark row, from its result's first sample; a failed call scores as wrong. The
    reply read (and kept) is the request's `prefill` followed by the sample's text."""
    if len(rows) != len(results):
        raise ValueError(f"score_rows: {len(rows)} benchmark rows but {len(results)} results")
    out = []
    for row, result in zip(rows, results):
        where = f"{row['source_file']} row {row['row']} (benchmark {row['benchmark']}, question {row['question_id']})"
        if not result.samples:
            raise ValueError(f"{where}: field samples: the result has no sample")
        if not 2 <= len(row["options"]) <= len(EVAL_LETTERS):
            raise ValueError(f"{where}: field options: {len(row['options'])} options, not 2 to {len(EVAL_LETTERS)}")
        if row["gold_letter"] not in list(EVAL_LETTERS[: len(row["options"])]):  # a list: "" is in every str
            raise ValueError(f"{where}: field gold_letter: {row['gold_letter']!r} names none of its options")
        sample = result.samples[0]
        choice = ""
        if sample.ok:
            index = read_choice(prefill + sample.text, row["options"])
            choice = "" if index is None else EVAL_LETTERS[index]
        out.append(
            {
                "model": model,
                "model_revision": revision,
                "benchmark": row["benchmark"],
                "task": row["task"],
                "question_id": row["question_id"],
                "gold_letter": row["gold_letter"],
                "output": prefill + sample.text if sample.ok else "",
                "choice": choice,
                "readable": choice != "",
                "correct": choice == row["gold_letter"],
                "forced_close": bool(sample.forced_close),
                "error": sample.error or "",
                "call_key": sample.key,
            }
        )
    return pa.Table.from_pylist(out, schema=SCORES_ARROW)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for k successes in n trials; (0, 1) when there is no trial."""
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    z = _z(confidence)
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # k = 0 and k = n give exactly 0 and 1; rounding would leave a 1e-17 there
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for p1 - p2 from two independent proportions."""
    if n1 == 0 or n2 == 0:
        return -1.0, 1.0  # one side unobserved: the difference can be anything
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def summarize(scores: pa.Table, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Accuracy and its interval per (model, benchmark, task) and per (model, benchmark, "overall").

    Rows: model, benchmark, task, n, correct, accuracy, lo, hi, unreadable (answered but not read), errors (the call
    failed; counted in n as wrong), forced_close. Models in the order first seen, benchmarks and tasks sorted,
    "overall" last in each benchmark.
    """
    cols = ["model", "benchmark", "task", "question_id", "readable", "correct", "forced_close", "error"]
    missing = [c for c in cols if c not in scores.column_names]
    if missing:
        raise ValueError(f"summarize: the scores table lacks the field(s) {', '.join(missing)}")
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    models: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for i, r in enumerate(scores.select(cols).to_pylist()):
        key = (r["model"], r["benchmark"], r["question_id"])
        if key in seen:  # a question scored twice would count twice
            raise ValueError(f"summarize: scores row {i}: field question_id: {key} is scored more than once")
        seen.add(key)
        if r["task"] == OVERALL:  # it would merge with the benchmark's whole-split row
            raise ValueError(f"summarize: scores row {i}: field task: {OVERALL!r} is reserved for the whole split")
        if r["model"] not in models:
            models.append(r["model"])
        for task in (r["task"], OVERALL):
            c = counts.setdefault((r["model"], r["benchmark"], task), dict.fromkeys(_COUNTS, 0))
            c["n"] += 1
            c["correct"] += bool(r["correct"])
            c["errors"] += bool(r["error"])
            c["unreadable"] += not r["error"] and not r["readable"]
            c["forced_close"] += bool(r["forced_close"])
    order = {m: i for i, m in enumerate(models)}

    def sort_key(key: tuple[str, str, str]) -> tuple:
        model, benchmark, task = key
        return order[model], benchmark, task == OVERALL, task

    out = []
    for key in sorted(counts, key=sort_key):
        c = counts[key]
        lo, hi = wilson_interval(c["correct"], c["n"], confidence)
        out.append(
            {
                "model": key[0],
                "benchmark": key[1],
                "task": key[2],
                "n": c["n"],
                "correct": c["correct"],
                "accuracy": c["correct"] / c["n"],
                "lo": lo,
                "hi": hi,
                "unreadable": c["unreadable"],
                "errors": c["errors"],
                "forced_close": c["forced_close"],
            }
        )
    return out
