"""Question synthesis speed on one core, and peak memory from 1 to 16 shards.

    python benchmarks/questions.py            # ~2 min on a 2-core VM
    python benchmarks/questions.py --quick    # smoke run

Part 1, in this process pinned to ONE CPU: the same 300 synthetic scenes
(the demo source, 3-12 objects) go through
  stage 1  the programmatic families (`template_rows` + the Arrow table), at
           per-family quotas of 2 (the demo recipe), 4, 6 and 10 per image;
  stage 2  composition from those stage-1 rows (`build_questions_composed`,
           rewrite off: the LLM rewrite is measured by the engine benchmark),
           at the demo's quotas per kind (chain 2, combine 1, conditional 1)
           for stage-1 quota 2, and quota/2 per kind above that;
  format   `build_questions`: dedup, shuffle, prompt rendering.
Scenes are made and decoded to rows once, outside the timings (that is the
images stage, measured by benchmarks/scenes.py). Each case runs --repeats
times; the table shows the best and the median questions/s.

Part 2: one FRESH subprocess per case (1, 4, 16 shards of 64 scenes), each
pinned to one CPU, running stage 1 + 2 + format per shard as the assets do
(make the shard's images, build, write parquet, drop). The RSS high-water mark
is reset after imports (/proc/self/clear_refs), so the peak is the shards'
working set on top of the imported libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lgt.images.sources import read_shard  # noqa: E402
from lgt.images.validate import Limits, build_shard  # noqa: E402
from lgt.questions.composed import build_questions_composed  # noqa: E402
from lgt.questions.format import build_questions  # noqa: E402
from lgt.questions.grounded import template_rows  # noqa: E402
from lgt.questions.rows import items_table  # noqa: E402
from lgt.recipe import load_recipe  # noqa: E402
from lgt.storage import write_table  # noqa: E402

TARGET_STAGE1, TARGET_STAGE2 = 20_000, 5_000


def stages(recipe, cap: int | None):
    s1 = recipe.stages.questions_grounded
    if cap is not None:
        s1 = s1.model_copy(
            update={"families": {k: v.model_copy(update={"max_per_image": cap}) for k, v in s1.families.items()}}
        )
    s1 = s1.model_copy(update={"llm": s1.llm.model_copy(update={"enabled": False})})
    s2 = recipe.stages.questions_composed
    s2 = s2.model_copy(update={"rewrite": s2.rewrite.model_copy(update={"enabled": False})})
    if cap is not None and cap > 2:  # more stage-1 parents per image: compose more from them too
        s2 = s2.model_copy(
            update={
                "compositions": {
                    k: v.model_copy(update={"max_per_image": cap // 2}) for k, v in s2.compositions.items()
                }
            }
        )
    return s1, s2


def shard_images(recipe, shard: int, n: int):
    src = recipe.sources[0].model_copy(
        update={"images_per_shard": n, "shards": max(shard + 1, recipe.sources[0].shards)}
    )
    return build_shard(read_shard(src, shard), Limits()).images


def throughput(n_images: int, repeats: int) -> dict[tuple[str, int], float]:
    """Prints the table; returns the best questions/s by (stage, quota)."""
    best: dict[tuple[str, int], float] = {}
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    recipe = load_recipe()
    images = shard_images(recipe, 0, n_images)
    rows = images.select(["image_id", "width", "height", "objects"]).to_pylist()
    print(
        f"{n_images} scenes ({sum(len(r['objects']) for r in rows) / n_images:.1f} objects each), pinned to CPU {cpu}\n"
    )
    print(f"{'case':<34}{'per image':>10}{'best q/s':>11}{'median q/s':>12}")
    for cap in (2, 4, 6, 10):
        s1, s2 = stages(recipe, cap)
        t1, t2, t3 = [], [], []
        for _ in range(repeats):
            t = time.perf_counter()
            g = items_table(template_rows(rows, s1, "synth", Counter()))
            t1.append(g.num_rows / (time.perf_counter() - t))
            t = time.perf_counter()
            c = build_questions_composed(images, g, s2, s1, recipe.models, "synth", None).table
            t2.append(c.num_rows / (time.perf_counter() - t))
            t = time.perf_counter()
            q = build_questions(g, c, recipe.stages.questions).table
            t3.append(q.num_rows / (time.perf_counter() - t))
        label = f"quota {cap}{' (demo)' if cap == 2 else ''}"
        for name, ts, n in (("stage 1", t1, g.num_rows), ("stage 2", t2, c.num_rows), ("format", t3, q.num_rows)):
            print(f"{name + ', ' + label:<34}{n / n_images:>10.1f}{max(ts):>11,.0f}{statistics.median(ts):>12,.0f}")
            best[name, cap] = max(ts)
    print(f"\ntargets: stage 1 >= {TARGET_STAGE1:,} q/s, stage 2 >= {TARGET_STAGE2:,} composed/s (one core)")
    return best


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(shards: int, per_shard: int) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    recipe = load_recipe()
    s1, s2 = stages(recipe, None)
    base = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark: measure the shards, not the imports
        f.write("5")
    questions = 0
    with tempfile.TemporaryDirectory() as d:
        for shard in range(shards):
            images = shard_images(recipe, shard, per_shard)
            g = items_table(template_rows(images.to_pylist(), s1, "synth", Counter()))
            c = build_questions_composed(images, g, s2, s1, recipe.models, "synth", None).table
            q = build_questions(g, c, recipe.stages.questions).table
            write_table(q, f"{d}/{shard}.parquet")
            questions += q.num_rows
            del images, g, c, q
    peak = _rss_kib("VmHWM")
    print(json.dumps({"shards": shards, "questions": questions, "base_mib": base / 1024, "peak_mib": peak / 1024}))


def memory(per_shard: int, cases: list[int]) -> dict[int, float]:
    """Prints the table; returns the peak above imports (MiB) by shard count."""
    print(f"\npeak memory, one subprocess per case, {per_shard} scenes per shard")
    print(f"{'shards':>7}{'questions':>11}{'after imports MiB':>19}{'peak MiB':>10}{'above imports':>15}")
    peaks = {}
    for n in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--per-shard", str(per_shard)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        peaks[n] = r["peak_mib"] - r["base_mib"]
        print(f"{n:>7}{r['questions']:>11}{r['base_mib']:>19.0f}{r['peak_mib']:>10.0f}{peaks[n]:>15.1f}")
    print(
        f"peak above imports, {cases[-1]} shards / {cases[0]} shard: "
        f"{peaks[cases[-1]] / max(peaks[cases[0]], 1e-9):.2f}x"
    )
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--per-shard", type=int, default=64)
    ap.add_argument("--child", type=int)
    a = ap.parse_args()
    if a.child:
        return memory_child(a.child, a.per_shard)
    if a.quick:
        a.images, a.repeats, a.per_shard = 60, 2, 16
    best = throughput(a.images, a.repeats)
    peaks = memory(a.per_shard, [1, 4] if a.quick else [1, 4, 16])
    if not a.quick:
        record_results(best, peaks, a.per_shard)


def record_results(best: dict[tuple[str, int], float], peaks: dict[int, float], per_shard: int) -> None:
    """The summary's figures (benchmarks/results.py): the best questions/s of stages 1 and 2, the memory's peaks."""
    from results import command_line, record

    cmd = command_line()

    def k(*xs: float) -> str:
        return "-".join(f"{x / 1000:.1f}" for x in sorted({min(xs), max(xs)})) + "k/s"

    one = {cap: q for (stage, cap), q in best.items() if stage == "stage 1"}
    value = f"{k(one[2])} at the demo's quota 2; {k(*(q for cap, q in one.items() if cap != 2))} at quotas 4-10"
    record("stage throughput", "stage-1 questions, one core (best)", value, command=cmd)
    value = f"{k(*(q for (stage, _), q in best.items() if stage == 'stage 2'))} over quotas 2-10"
    record("stage throughput", "stage-2 composed questions, one core (best)", value, command=cmd)
    lo, hi = min(peaks), max(peaks)
    value = " / ".join(f"{peaks[n]:.1f}" for n in sorted(peaks)) + " MiB at " + " / ".join(map(str, sorted(peaks)))
    value += f" shards ({hi}/{lo} = {peaks[hi] / max(peaks[lo], 1e-9):.2f}x)"
    figure = "questions (stage 1 + 2 + format + parquet): peak above imports over shards"
    record("memory", figure, value, command=cmd, notes=f"{per_shard} scenes a shard")


if __name__ == "__main__":
    main()
