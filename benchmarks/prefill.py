"""Shared-prefix prefill in the transformers backend vs plain left-padded `model.generate`, side by side.

    python benchmarks/prefill.py               # about 4 minutes on the 2-core VM
    python benchmarks/prefill.py --rounds 1    # one timing per case

Three workloads shaped like the demo's trace stages (prompts of about 530 tokens: a scene description and a
question), greedy, 24 new tokens per row, the embedded SmolLM2-135M-Instruct in the dtype `base_model` picks:

* samples: 4 prompts x 4 samples each (what `n` makes; difficulty, simple CoTs);
* answers: 4 prompts x 4 different thoughts, each followed by the close text (a thinking budget's answer phase);
* distinct: 16 prompts that share only the chat template's system turn (nothing much to share: the plan
  must not cost more than padding).

"ours" is `TransformersBackend.run` (rows sorted by token ids, `plan_prefill`, one prefill per shared prefix);
"plain" is `model.generate` on the same rows left-padded in one batch, the same model object and threads.
Both produce greedy text; the script prints how many rows agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lgt.base_model import base_model_path  # noqa: E402
from lgt.engines import Call, Request, Sampling  # noqa: E402
from lgt.engines.transformers_backend import TransformersBackend  # noqa: E402
from lgt.paths import lgt_home  # noqa: E402

NEW_TOKENS = 24
COLOURS = ["red", "blue", "green", "yellow", "purple", "gray"]


def scene(k: int) -> str:
    objs = [f"a {COLOURS[(i + k) % 6]} cube at ({(7 * i + k) % 97}, {(11 * i) % 89})" for i in range(40)]
    return f"Scene {k}: " + ", ".join(objs) + "."


def workloads() -> dict[str, list[Request]]:
    greedy = Sampling(temperature=0.0, max_new_tokens=NEW_TOKENS)
    asks = [
        [{"role": "user", "content": f"{scene(k)} How many {COLOURS[k]} cubes are there? (A) 3 (B) 7 (C) 9 (D) 12"}]
        for k in range(4)
    ]
    thoughts = ["I count the cubes one by one.", "Seven of them are", "Looking at the list, the", "Hmm, maybe"]
    return {
        "samples": [Request(messages=m, sampling=greedy) for m in asks for _ in range(4)],
        "answers": [
            Request(messages=m, prefill=f"<think>{t}</think>\n<answer>", sampling=greedy)
            for m in asks
            for t in thoughts
        ],
        "distinct": [
            Request(messages=[{"role": "user", "content": f"{scene(k)} Which colour is most common?"}], sampling=greedy)
            for k in range(16)
        ],
    }


def ours(backend: TransformersBackend, reqs: list[Request]) -> list[str]:
    calls = [Call(i, 0, r, str(i), 0) for i, r in enumerate(reqs)]
    out: dict[int, str] = {}
    backend.run(calls, lambda c, s: out.__setitem__(c.index, s.text))
    return [out[i] for i in range(len(reqs))]


@torch.inference_mode()
def plain(backend: TransformersBackend, reqs: list[Request]) -> list[str]:
    tok = backend.tokenizer
    texts = [backend.render(Call(i, 0, r, str(i), 0)) for i, r in enumerate(reqs)]
    enc = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    out = backend.model.generate(**enc, do_sample=False, max_new_tokens=NEW_TOKENS, pad_token_id=tok.pad_token_id)
    return [tok.decode(o[enc.input_ids.shape[1] :], skip_special_tokens=True) for o in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs per case, interleaved (median reported)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()
    dtype = args.dtype
    model = base_model_path(None, lgt_home(), dtype)
    # batch_tokens high enough that both paths run each workload as one batch of 16 rows
    backend = TransformersBackend(str(model), batch_size=16, batch_tokens=1 << 20, dtype=getattr(torch, dtype))
    print(f"SmolLM2-135M-Instruct, {dtype}, {torch.get_num_threads()} threads, {NEW_TOKENS} new tokens per row")
    print(
        f"{'workload':10} {'rows':>4} {'prompt tok':>10} {'plain s':>8} {'ours s':>8} {'speed-up':>8} {'same text':>9}"
    )
    speedups: dict[str, float] = {}
    for name, reqs in workloads().items():
        lengths = [len(backend.tokenizer(backend.render(Call(0, 0, r, "", 0))).input_ids) for r in reqs]
        ours(backend, reqs[:2]), plain(backend, reqs[:2])  # warm-up
        times: dict[str, list[float]] = {"plain": [], "ours": []}
        texts = {}
        for _ in range(args.rounds):
            for label, fn in (("plain", plain), ("ours", ours)):
                t0 = time.perf_counter()
                texts[label] = fn(backend, reqs)
                times[label].append(time.perf_counter() - t0)
        p, o = statistics.median(times["plain"]), statistics.median(times["ours"])
        same = sum(a == b for a, b in zip(texts["plain"], texts["ours"]))
        speedups[name] = p / o
        print(f"{name:10} {len(reqs):>4} {sum(lengths):>10} {p:>8.1f} {o:>8.1f} {p / o:>7.2f}x {same:>5}/{len(reqs)}")
    record_results(speedups, dtype, args.rounds)


def record_results(speedups: dict[str, float], dtype: str, rounds: int) -> None:
    """The summary's figure (benchmarks/results.py): each workload's speed-up over plain `generate`."""
    from results import command_line, record

    labels = {"samples": "4 prompts x 4 samples", "answers": "answers after thoughts", "distinct": "nothing shared"}
    value = ", ".join(f"{x:.2f}x {labels.get(name, name)}" for name, x in speedups.items()) + f" ({dtype})"
    notes = f"{torch.get_num_threads()} threads, median of {rounds} interleaved runs, {NEW_TOKENS} new tokens"
    figure = "shared prompt prefixes prefilled once, vs plain `generate`"
    record("engines", figure, value, command=command_line(), notes=notes)


if __name__ == "__main__":
    main()
