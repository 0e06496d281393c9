"""Tokens/s of the embedded model against dtype, torch threads, batch size and a busy neighbour.

Each case runs in a fresh subprocess (OpenMP reads its wait policy once, at start-up):
SmolLM2-135M-Instruct through `TransformersBackend`, greedy, `--tokens` new tokens per
row, the same prompts for every case. "busy" runs a second torch process (one thread,
a matmul loop) beside it for the whole case, as a neighbouring step would. Threads
"auto" is the backend's default: as many as the cores the others leave free, batch
by batch (`CoreShare`).

    python benchmarks/threads.py                      # the full grid, about 15 minutes on 2 cores
    python benchmarks/threads.py --dtypes bfloat16 --batches 32 --waits default
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT = "Describe a red circle, a blue square and a green star in a picture, one sentence each."


def child(dtype: str, threads: int, batch: int, tokens: int) -> None:
    import torch

    if threads:  # 0: the backend's own choice
        torch.set_num_threads(threads)
    sys.path.insert(0, os.path.dirname(HERE))
    from lgt.base_model import models_dir, smollm2_gguf, unpack_gguf
    from lgt.engines import Call, Request, Sampling
    from lgt.engines.transformers_backend import TransformersBackend

    path = unpack_gguf(smollm2_gguf(), models_dir(os.environ.get("LGT_HOME", ".lgt")), dtype)
    backend = TransformersBackend(str(path), batch_size=batch, threads=threads or None)
    sampling = Sampling(temperature=0.0, max_new_tokens=tokens)
    calls = [
        Call(i, 0, Request(messages=[{"role": "user", "content": f"{PROMPT} ({i})"}], sampling=sampling), str(i), i)
        for i in range(batch)
    ]
    done: list = []
    backend.run(calls[:1], lambda c, s: None)  # warm-up
    t0 = time.perf_counter()
    backend.run(calls, lambda c, s: done.append(s))
    seconds = time.perf_counter() - t0
    print(json.dumps({"tokens": sum(s.completion_tokens for s in done), "seconds": seconds}))


def busy() -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a)


def run_case(dtype: str, threads: int, batch: int, tokens: int, neighbour: bool, passive: bool) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("LGT_TORCH_THREADS", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    hog = None
    if neighbour:
        hog = subprocess.Popen([sys.executable, __file__, "--_busy"], env=dict(os.environ, OMP_NUM_THREADS="1"))
        time.sleep(6)  # let it import torch and start burning its core
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--_child", dtype, str(threads), str(batch), str(tokens)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    r = json.loads(out.strip().splitlines()[-1])
    return r["tokens"] / r["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--waits", default="default,passive", help="OpenMP wait policies")
    ap.add_argument("--_child", nargs=4)
    ap.add_argument("--_busy", action="store_true")
    a = ap.parse_args()
    if a._busy:
        return busy()
    if a._child:
        dtype, threads, batch, tokens = a._child
        return child(dtype, int(threads), int(batch), int(tokens))
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; {a.tokens} greedy tokens per row; tokens/s (higher is better)")
    print(f"| dtype | batch | neighbour | OMP wait | 1 thread | {cores} threads | auto |")
    print("|---|---|---|---|---|---|---|")
    grid: dict[tuple, list[float]] = {}
    for dtype, batch, neighbour, wait in itertools.product(
        a.dtypes.split(","), [int(b) for b in a.batches.split(",")], [False, True], a.waits.split(",")
    ):
        tps = grid[dtype, batch, neighbour, wait] = [
            run_case(dtype, t, batch, a.tokens, neighbour, wait == "passive") for t in (1, cores, 0)
        ]
        print(
            f"| {dtype} | {batch} | {'busy' if neighbour else 'idle'} | {wait} | "
            + " | ".join(f"{t:.1f}" for t in tps)
            + " |",
            flush=True,
        )
    record_results(grid, cores)


def record_results(grid: dict[tuple, list[float]], cores: int) -> None:
    """The summary's figures (benchmarks/results.py): per dtype, the automatic thread count at the largest batch
    of the run, idle and beside a busy neighbour (OpenMP's default wait policy), and `cores` fixed threads."""
    from results import command_line, record

    batch = max(b for _, b, _, _ in grid)
    for dtype in dict.fromkeys(d for d, _, _, _ in grid):
        idle, loaded = grid.get((dtype, batch, False, "default")), grid.get((dtype, batch, True, "default"))
        if idle and loaded:
            value = f"{idle[2]:.1f} / {loaded[2]:.1f} tokens/s ({cores} fixed threads: {idle[1]:.1f} / {loaded[1]:.1f})"
            figure = f"automatic CPU threads, {dtype}, {batch} rows, idle / busy neighbour"
            record("engines", figure, value, command=command_line())


if __name__ == "__main__":
    main()
