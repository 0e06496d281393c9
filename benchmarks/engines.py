"""Engine throughput, side by side in one run, on the same prompts and the same server.

    python benchmarks/engines.py                      # full run (see benchmarks/README.md)
    python benchmarks/engines.py --prompts 64 --quick # a smoke run
    python benchmarks/engines.py --peers /path/to/peer-venv/bin/python   # + Curator and distilabel
    python benchmarks/engines.py --only vllm,vllm-serve --rounds 1        # vLLM alone (its CPU build)

Server: `transformers serve --continuous-batching` with the embedded SmolLM2-135M-Instruct on loopback.
vLLM (where an interpreter has it, see lgt/engines/offline.py: vllm_python) runs after that server is stopped,
on the same requests: offline through our VLLMBackend, and `vllm serve` started by the launcher.
Every run is scored the same way: completion tokens counted by re-tokenising the returned texts with the
model's tokenizer (so tools that do not report usage are measured alike), divided by wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lgt.base_model import base_model_path  # noqa: E402
from lgt.engines import CallCache, Engine, Request, Sampling  # noqa: E402
from lgt.engines.openai_backend import OpenAIBackend  # noqa: E402
from lgt.engines.server import LaunchedServer  # noqa: E402
from lgt.paths import lgt_home  # noqa: E402

TOPICS = [
    "rivers",
    "owls",
    "bridges",
    "volcanoes",
    "tea",
    "chess",
    "glaciers",
    "violins",
    "deserts",
    "robots",
    "bees",
    "lighthouses",
    "maps",
    "comets",
    "orchards",
    "trains",
]


def prompts(n: int) -> list[str]:
    return [f"Write one sentence about {TOPICS[i % len(TOPICS)]} (note {i})." for i in range(n)]


# --- a plain asyncio HTTP/1.1 client: the lowest-overhead baseline --------------------------------


async def _post(reader, writer, port: int, body: bytes) -> dict:
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (port, len(body)) + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:"))
    return json.loads(await reader.readexactly(length))


async def plain_load(port: int, model: str, texts: list[str], concurrency: int, max_tokens: int) -> list[str]:
    queue: asyncio.Queue = asyncio.Queue()
    for i, t in enumerate(texts):
        queue.put_nowait((i, t))
    out: list[str] = [""] * len(texts)

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # one keep-alive connection each
        while not queue.empty():
            i, t = queue.get_nowait()
            body = json.dumps(
                {
                    "model": model,
                    "messages": [{"role": "user", "content": t}],
                    "max_tokens": max_tokens,
                    "temperature": 0.7,
                    "top_p": 0.8,
                    "seed": i,
                }
            ).encode()
            out[i] = (await _post(reader, writer, port, body))["choices"][0]["message"]["content"] or ""
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--sequential-prompts", type=int, default=32)
    ap.add_argument("--inprocess-prompts", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--peers", help="python of a venv with bespokelabs-curator and distilabel")
    ap.add_argument("--rounds", type=int, default=2, help="HTTP clients run this many times; medians are compared")
    ap.add_argument(
        "--only",
        default="ours,plain,sequential,curator,distilabel,inprocess,warm,vllm,vllm-serve",
        help="comma-separated subset of the runs",
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if args.quick:
        args.sequential_prompts = args.inprocess_prompts = 8
        args.rounds = 1

    from transformers import AutoTokenizer

    model = str(base_model_path(None, lgt_home()))
    tok = AutoTokenizer.from_pretrained(model)
    count = lambda texts: sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts)  # noqa: E731
    texts = prompts(args.prompts)
    rows: list[tuple[str, int, int, float]] = []  # name, prompts, tokens, seconds

    def record(name: str, outs: list[str], secs: float) -> float:
        n = count(outs)
        rows.append((name, len(outs), n, secs))
        print(f"  {name:<44} {len(outs):>4} prompts {n:>6} tokens {secs:>7.1f} s {n / secs:>7.1f} tok/s", flush=True)
        return n / secs

    # the transformers server only when a client of it is measured: vLLM alone gets the cores to itself
    http = {"ours", "plain", "sequential", "curator", "distilabel", "warm"} & only
    print(
        f"model {model}\n"
        + ("server: transformers serve --continuous-batching (CPU), " if http else "")
        + f"{os.cpu_count()} cores, concurrency {args.concurrency}, max_tokens {args.max_tokens}",
        flush=True,
    )
    sampling = dict(temperature=0.7, top_p=0.8, max_new_tokens=args.max_tokens)
    reqs = [
        Request(messages=[{"role": "user", "content": t}], sampling=Sampling(seed=i, **sampling))
        for i, t in enumerate(texts)
    ]
    server = LaunchedServer("transformers", model, extra_args=["--device", "cpu"], env={"HF_HUB_OFFLINE": "1"})
    with server if http else contextlib.nullcontext():
        port = server.port
        # warm-up: a few full waves, so the first measured client does not pay for the server's start
        if http:
            asyncio.run(plain_load(port, model, prompts(4 * args.concurrency), args.concurrency, args.max_tokens))
        backend = OpenAIBackend(server.base_url, model, max_concurrency=args.concurrency)
        rates: dict[str, list[float]] = {}

        def run_ours():
            if "ours" not in only:
                return
            fresh = CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite")  # a cold cache each round: all calls made
            res, secs = timed(lambda: Engine(backend, fresh).generate(reqs))
            rates.setdefault("ours", []).append(
                record("ours: Engine + OpenAIBackend + call cache", [r.samples[0].text for r in res], secs)
            )

        def run_plain():
            if "plain" not in only:
                return
            outs, secs = timed(lambda: asyncio.run(plain_load(port, model, texts, args.concurrency, args.max_tokens)))
            rates.setdefault("plain", []).append(record("plain asyncio HTTP load generator", outs, secs))

        def run_peers():
            tools = [t for t in ("curator", "distilabel") if t in only]
            if not args.peers or not tools:
                return
            spec = json.dumps(
                {
                    "base_url": server.base_url,
                    "model": model,
                    "prompts": texts,
                    "tools": tools,
                    "max_tokens": args.max_tokens,
                    "concurrency": args.concurrency,
                }
            )
            out = subprocess.run(
                [args.peers, str(Path(__file__).with_name("engine_peers.py"))],
                input=spec,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            for line in out.stderr.splitlines():
                if " failed: " in line:
                    print("  " + line)
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    rates.setdefault(r["tool"], []).append(
                        record(f"{r['tool']} {r['version']}", r["outputs"], r["seconds"])
                    )

        # rounds in alternating order, so drift in the server or the machine hits every client alike
        for rnd in range(args.rounds):
            if http:
                print(f" round {rnd + 1}/{args.rounds}", flush=True)
            for run in (run_ours, run_plain, run_peers) if rnd % 2 == 0 else (run_peers, run_plain, run_ours):
                run()
        seq = None
        if "sequential" in only:
            seq_texts = texts[: args.sequential_prompts]
            outs, secs = timed(lambda: asyncio.run(plain_load(port, model, seq_texts, 1, args.max_tokens)))
            seq = record("sequential client (one request at a time)", outs, secs)
        med = {k: statistics.median(v) for k, v in rates.items()}
        ours, plain = med.get("ours"), med.get("plain")
        peers = {k: v for k, v in med.items() if k not in ("ours", "plain")}

        warm_ms = None
        if "warm" in only:
            # the cache a warm rerun reads: one full run's results; then every result comes from it
            cache = CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite")
            Engine(backend, cache).generate(reqs)
            warm_runs = max(1, 1000 // len(reqs))
            t0 = time.perf_counter()
            for _ in range(warm_runs):
                e = Engine(backend, cache)
                e.generate(reqs)
                assert e.stats.calls == 0
            warm_ms = (time.perf_counter() - t0) / (warm_runs * len(reqs)) * 1000 * 1000  # ms per 1,000 results

    inproc = hf_rate = None
    if "inprocess" in only:
        # in process: our batched transformers engine vs plain model.generate, one prompt at a time
        import torch
        from transformers import AutoModelForCausalLM

        from lgt.engines.transformers_backend import TransformersBackend

        few = reqs[: args.inprocess_prompts]
        tb = TransformersBackend(model, batch_size=16)
        res, secs = timed(lambda: Engine(tb).generate(few))
        inproc = record("in-process: Engine + TransformersBackend", [r.samples[0].text for r in res], secs)
        hf = AutoModelForCausalLM.from_pretrained(model).eval()

        def plain_generate():
            outs = []
            for r in few:
                ids = tok.apply_chat_template(
                    r.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
                with torch.inference_mode():
                    o = hf.generate(**ids, do_sample=True, temperature=0.7, top_p=0.8, max_new_tokens=args.max_tokens)
                outs.append(tok.decode(o[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
            return outs

        outs, secs = timed(plain_generate)
        hf_rate = record("in-process: plain model.generate, one at a time", outs, secs)
        del tb, hf

    vllm_rates = run_vllm(args, only, model, reqs, texts, record)

    print(f"\nratios of median tokens/s over {args.rounds} round(s)")
    if ours and plain:
        print(f"  ours / plain asyncio load generator : {ours / plain:5.2f}x   (target >= 0.9x)")
    if ours and seq:
        print(f"  ours / sequential client            : {ours / seq:5.2f}x   (target >= 4x)")
    for name, rate in peers.items():
        if ours:
            print(f"  ours / {name:<29}: {ours / rate:5.2f}x   (target >= 1.0x)")
    if inproc:
        print(f"  in-process engine / model.generate  : {inproc / hf_rate:5.2f}x")
    if warm_ms is not None:
        print(f"  warm rerun, all cached              : {warm_ms:.1f} ms per 1,000 results")
    for name, rate in vllm_rates.items():
        line = f"  {name:<41}: {rate:6.1f} tok/s (median)"
        print(line + (f", {rate / ours:5.2f}x ours on transformers serve" if ours else ""))
    record_results(args, ours, plain, seq, peers, inproc and inproc / hf_rate, warm_ms, vllm_rates)


def run_vllm(args, only: set[str], model: str, reqs: list[Request], texts: list[str], record) -> dict[str, float]:
    """vLLM on the same requests, alone on the machine (the transformers server is stopped by now): offline
    through our worker backend (every call at once), and `vllm serve` started by the launcher, measured with our
    engine and with the plain load generator at the same concurrency. Start-up times are printed, not scored."""
    from lgt.engines.offline import VLLMBackend, vllm_python

    runs = [r for r in ("vllm", "vllm-serve") if r in only]
    if not runs:
        return {}
    try:
        python = vllm_python()
    except RuntimeError as e:
        print(f"  vLLM skipped: {e}")
        return {}
    print(f"vLLM: {python}", flush=True)
    rates: dict[str, list[float]] = {}
    texts_seen: dict[str, list[str]] = {}

    def ours(name: str, backend) -> None:
        fresh = CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite")
        res, secs = timed(lambda: Engine(backend, fresh).generate(reqs))
        outs = [r.samples[0].text for r in res]
        texts_seen.setdefault(name, outs)
        rates.setdefault(name, []).append(record(name, outs, secs))

    if "vllm" in runs:
        backend, secs = timed(lambda: VLLMBackend(model))
        print(f"  vLLM worker started in {secs:.1f} s", flush=True)
        for _ in range(args.rounds):
            ours("vllm offline: Engine + VLLMBackend", backend)
        backend.close()
    if "vllm-serve" in runs:
        server = LaunchedServer("vllm", model, startup_timeout_s=900, env={"HF_HUB_OFFLINE": "1"})
        _, secs = timed(server.start)
        print(f"  vllm serve healthy in {secs:.1f} s", flush=True)
        try:
            asyncio.run(plain_load(server.port, model, prompts(2 * args.concurrency), args.concurrency, 8))  # warm-up
            backend = OpenAIBackend(server.base_url, model, max_concurrency=args.concurrency)
            for _ in range(args.rounds):
                ours("vllm serve: Engine + OpenAIBackend", backend)
                outs, secs = timed(
                    lambda: asyncio.run(plain_load(server.port, model, texts, args.concurrency, args.max_tokens))
                )
                texts_seen.setdefault("vllm serve: plain", outs)
                rates.setdefault("vllm serve: plain asyncio load generator", []).append(
                    record("vllm serve: plain asyncio load generator", outs, secs)
                )
        finally:
            server.stop()
    seen = list(texts_seen.values())
    print(f"  vLLM runs gave identical texts (seeds honoured alike): {all(t == seen[0] for t in seen)}")
    return {name: statistics.median(v) for name, v in rates.items()}


def record_results(args, ours, plain, seq, peers, inprocess, warm_ms, vllm_rates) -> None:
    """The summary's engine figures, as the ratios above print them (benchmarks/results.py); --quick records none."""
    if args.quick:
        return
    from results import command_line
    from results import record as keep  # main's `record` prints a run

    cmd = command_line()
    notes = f"{args.prompts} prompts, max_tokens {args.max_tokens}, {args.concurrency} in flight"
    if ours and plain:
        figure = f"our HTTP engine / plain asyncio load generator, {args.concurrency} in flight"
        value = f"{ours / plain:.2f}x (median of {args.rounds} rounds)"
        keep("engines", figure, value, command=cmd, notes=notes)
    if ours and seq:
        keep("engines", "ours / sequential client", f"{ours / seq:.2f}x", command=cmd, notes=notes)
    for name, rate in peers.items() if ours else ():
        tool = name.split(" ")[0]  # "curator 0.1.31"
        figure = {"curator": "ours / Curator", "distilabel": f"ours / distilabel, max_tokens {args.max_tokens}"}
        keep("engines", figure.get(tool, f"ours / {tool}"), f"{ours / rate:.2f}x ({name})", command=cmd, notes=notes)
    if inprocess:
        figure = "in-process engine / `model.generate` one at a time"
        keep("engines", figure, f"{inprocess:.2f}x", command=cmd, notes=f"{args.inprocess_prompts} prompts")
    if warm_ms is not None:
        keep("engines", "warm rerun, all cached", f"{warm_ms:.1f} ms per 1,000 results", command=cmd, notes=notes)
    figures = {
        "vllm offline: Engine + VLLMBackend": "vLLM CPU build offline, Engine + VLLMBackend",
        "vllm serve: Engine + OpenAIBackend": "`vllm serve` through our engine",
    }
    for name, rate in vllm_rates.items():
        if name in figures:
            value = f"{rate:.1f} tokens/s" + (f" ({rate / ours:.2f}x ours on transformers serve)" if ours else "")
            keep("engines", figures[name], value, command=cmd, notes=notes)


if __name__ == "__main__":
    main()
