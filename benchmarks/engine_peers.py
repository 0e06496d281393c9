"""Peer tools on the same server and prompts: run by benchmarks/engines.py with a separate venv's python.

Reads {base_url, model, prompts, max_tokens, concurrency} as JSON on stdin and prints one JSON line per
tool: {tool, version, seconds, outputs}. Install the peers only in that venv:
    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0+cpu bespokelabs-curator distilabel
"""

import json
import os
import sys
import time
from importlib.metadata import version

spec = json.load(sys.stdin)
params = {"max_tokens": spec["max_tokens"], "temperature": 0.7, "top_p": 0.8}


def offline_tiktoken() -> None:
    """Curator estimates tokens for its rate limiter with tiktoken's cl100k file, which it downloads.

    Offline, register a byte-level encoding under that name instead: with the limits set out of the
    way below, the estimates only feed a limiter that never engages, so nothing measured changes.
    """
    import tiktoken

    byte_level = tiktoken.Encoding(
        name="cl100k_base",
        pat_str=r"[\s\S]",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|endoftext|>": 256},
    )
    tiktoken.get_encoding = lambda name: byte_level
    tiktoken.encoding_for_model = lambda model: byte_level


def curator_run() -> dict:
    os.environ["CURATOR_DISABLE_CACHE"] = "true"  # measure generation, not Curator's own disk cache
    offline_tiktoken()
    from bespokelabs import curator

    llm = curator.LLM(
        model_name=spec["model"],
        backend="openai",
        generation_params=params,
        backend_params={
            "base_url": spec["base_url"],
            "api_key": "EMPTY",
            "max_retries": 3,
            "invalid_finish_reasons": ["content_filter"],  # a length-capped answer is an answer here
            # Curator paces by rate limits, not a concurrency cap: set them out of the way
            "max_requests_per_minute": 100_000,
            "max_tokens_per_minute": 100_000_000,
        },
    )
    t0 = time.perf_counter()
    response = llm(spec["prompts"])
    secs = time.perf_counter() - t0
    data = response.dataset if hasattr(response, "dataset") else response
    return {
        "tool": "curator",
        "version": version("bespokelabs-curator"),
        "seconds": secs,
        "outputs": [r or "" for r in data["response"]],
    }


def distilabel_run() -> dict:
    from distilabel.models.llms import OpenAILLM

    llm = OpenAILLM(model=spec["model"], base_url=spec["base_url"], api_key="EMPTY", max_retries=3)
    llm.load()
    prompts = [[{"role": "user", "content": p}] for p in spec["prompts"]]
    outputs: list[str] = []
    t0 = time.perf_counter()
    # a distilabel step hands its LLM input batches; the batch size plays the concurrency's part
    for i in range(0, len(prompts), spec["concurrency"]):
        batch = llm.generate_outputs(
            inputs=prompts[i : i + spec["concurrency"]],
            num_generations=1,
            max_new_tokens=spec["max_tokens"],
            temperature=0.7,
            top_p=0.8,
        )
        for item in batch:
            gens = item["generations"] if isinstance(item, dict) else item
            outputs.append(gens[0] or "")
    return {
        "tool": "distilabel",
        "version": version("distilabel"),
        "seconds": time.perf_counter() - t0,
        "outputs": outputs,
    }


for run in (curator_run, distilabel_run):
    if run.__name__.removesuffix("_run") not in spec.get("tools", ["curator", "distilabel"]):
        continue
    try:
        print(json.dumps(run()), flush=True)
    except Exception as e:  # one peer failing must not hide the other's numbers
        print(f"{run.__name__} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
