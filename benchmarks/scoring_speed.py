"""What made a scored question cheaper, side by side in one run: the dtype, the batch's token budget, and building
the stop-string criteria once per backend instead of once per batch.

The same questions of a materialized `benchmark_suites` (the demo's held-out suite) go to the embedded model as
`benchmark_scores` sends them (the answer alone after "<think>\\n</think>\\n<answer>", 8 tokens, stop at
"</answer>"), each case with an empty call cache, one process, nothing else should run. "per batch" is what
`generate(stop_strings=...)` does: a new StopStringCriteria for every batch, whose vocabulary scan transformers'
own cache misses. Prints seconds, seconds per question and the ratio to the first case (the path before).

    LGT_HOME=/tmp/demo-lgt python benchmarks/scoring_speed.py [--questions 32]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from eval_cost import PREFILL, suite_rows  # this folder: scripts run as python benchmarks/<script>.py
from transformers import StoppingCriteriaList
from transformers.generation.stopping_criteria import StopStringCriteria

from lgt.base_model import base_model_path
from lgt.engines import CallCache, Engine, Sampling
from lgt.engines.transformers_backend import TransformersBackend
from lgt.evaluation.scoring import eval_request

SAMPLING = Sampling(n=1, temperature=0, max_new_tokens=8, stop=["</answer>"])
# (dtype, batch_tokens, stop criteria built once): the path before, each change alone, the path now
CASES = (
    ("bfloat16", 8192, False),
    ("bfloat16", 8192, True),
    ("float32", 8192, True),
    ("float32", 2048, True),
)


class PerBatchStops(TransformersBackend):
    """The criteria as `generate(stop_strings=...)` builds them: anew for every batch."""

    def stopping(self, stop: list[str]) -> StoppingCriteriaList | None:
        return StoppingCriteriaList([StopStringCriteria(self.tokenizer, stop)]) if stop else None


def main() -> None:
    home, rows = suite_rows()
    requests = [eval_request(r, SAMPLING, PREFILL) for r in rows]
    results = []
    for dtype, batch_tokens, once in CASES:
        kind = TransformersBackend if once else PerBatchStops
        model = base_model_path(None, home, dtype)
        backend = kind(str(model), batch_tokens=batch_tokens, dtype=getattr(torch, dtype))
        engine = Engine(backend, CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite"))
        start = time.perf_counter()
        engine.generate(requests)
        results.append((dtype, batch_tokens, once, time.perf_counter() - start))
        backend.close()
    first = results[0][3]
    print(f"{len(rows)} questions, {torch.get_num_threads()} threads")
    print("| dtype | batch_tokens | stop criteria | seconds | s/question | speed-up vs first |")
    print("|---|---:|---|---:|---:|---:|")
    for dtype, batch_tokens, once, seconds in results:
        stops = "once" if once else "per batch"
        per = seconds / len(rows)
        print(f"| {dtype} | {batch_tokens} | {stops} | {seconds:.1f} | {per:.2f} | {first / seconds:.2f}x |")
    record_results(results, len(rows))


def record_results(cases: list[tuple[str, int, bool, float]], questions: int) -> None:
    """The summary's figure (benchmarks/results.py): the path now (the last case) against the one before (the first)."""
    from results import command_line, record

    (d0, b0, once0, s0), (d1, b1, once1, s1) = cases[0], cases[-1]
    stops = {True: "built once", False: "per batch"}
    value = (
        f"{s1 / questions:.2f} s answer only ({d1}, {b1}-token batches, stop criteria {stops[once1]}); "
        f"{s0 / questions:.2f} s before ({d0}, {b0}, {stops[once0]}): {s0 / s1:.2f}x"
    )
    notes = f"{questions} questions of the held-out suite, an empty call cache per case"
    figure = "a scored benchmark question, base model, CPU"
    record("stage throughput", figure, value, command=command_line(("LGT_HOME",)), notes=notes)


if __name__ == "__main__":
    main()
