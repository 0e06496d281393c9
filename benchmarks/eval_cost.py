"""What a benchmark question costs to score on CPU, by how the answer is asked for, side by side in one run.

The same questions of a materialized `benchmark_suites` (the demo's held-out suite) go to the base model three
ways, each with an empty call cache: a thought under a 48-token budget, under a 24-token budget (two phases: the
thought, then the answer after the prompt is prefilled again), and the answer alone after the prefill
"<think>\\n</think>\\n<answer>" (one phase). Prints seconds, seconds per question, the ratio to the one-phase way,
and how many answers were read and right.

    LGT_HOME=/tmp/demo-lgt python benchmarks/eval_cost.py [--questions 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from lgt.base_model import base_model_path
from lgt.engines import CallCache, Engine, Sampling
from lgt.engines.settings import Thinking
from lgt.engines.transformers_backend import TransformersBackend
from lgt.evaluation.scoring import eval_request, score_rows

PREFILL = "<think>\n</think>\n<answer>"
WAYS = (
    (
        "thought, 48-token budget",
        Sampling(n=1, temperature=0, thinking=Thinking(max_tokens=48, answer_max_tokens=12)),
        "",
    ),
    (
        "thought, 24-token budget",
        Sampling(n=1, temperature=0, thinking=Thinking(max_tokens=24, answer_max_tokens=8)),
        "",
    ),
    ("answer only (prefill)", Sampling(n=1, temperature=0, max_new_tokens=8, stop=["</answer>"]), PREFILL),
)


def suite_rows() -> tuple[str, list[dict]]:
    """$LGT_HOME and the first `--questions` rows of its materialized `benchmark_suites` (scoring_speed.py too)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=32)
    args = ap.parse_args()
    home = os.environ.get("LGT_HOME", ".lgt")
    return home, pq.read_table(Path(home) / "storage" / "benchmark_suites.parquet").to_pylist()[: args.questions]


def main() -> None:
    home, rows = suite_rows()
    backend = TransformersBackend(str(base_model_path(None, home)))
    results = []
    for name, sampling, prefill in WAYS:
        engine = Engine(backend, CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite"))
        start = time.perf_counter()
        replies = engine.generate([eval_request(r, sampling, prefill) for r in rows])
        seconds = time.perf_counter() - start
        scored = score_rows(rows, replies, "base_model", "bench", prefill).to_pylist()
        results.append((name, seconds, sum(s["readable"] for s in scored), sum(s["correct"] for s in scored)))
    base = results[-1][1]
    print(f"{len(rows)} questions, {backend.model_id}")
    print("| way | seconds | s/question | vs answer only | read | right |\n|---|---:|---:|---:|---:|---:|")
    for name, seconds, read, right in results:
        print(f"| {name} | {seconds:.1f} | {seconds / len(rows):.2f} | {seconds / base:.2f}x | {read} | {right} |")
    record_results({name: seconds / len(rows) for name, seconds, _, _ in results}, len(rows), backend.model_id)


def record_results(per_question: dict[str, float], questions: int, model: str) -> None:
    """The summary's figure (benchmarks/results.py): the answer alone against a thought of 48 tokens."""
    from results import command_line, record

    alone, thought = per_question["answer only (prefill)"], per_question["thought, 48-token budget"]
    value = f"{alone:.2f} s answer only; {thought:.2f} s with a 48-token thought ({thought / alone:.2f}x)"
    notes = f"{questions} questions of the held-out suite, {Path(model).name}"
    figure = "a scored question with a thought, base model, CPU"
    record("stage throughput", figure, value, command=command_line(("LGT_HOME",)), notes=notes)


if __name__ == "__main__":
    main()
