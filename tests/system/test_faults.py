"""An LLM stage through Dagster against a real `transformers serve` behind a fault-injecting proxy.

The images and LLM-free question assets of one synthetic shard are materialized, then `simple_cots` calls the served
SmolLM2 over HTTP (`backend: openai`) through `FaultyProxy`. The HTTP backend retries 429, 5xx and dropped
connections `max_retries` times (the role's setting, 6 by default; the `openai` client's own backoff);
a call that still fails becomes a failed sample, which `simple_cots` drops and counts as `call_failed/<kind>`
(its documented error representation: the table holds only answered samples). Failures are never cached.

(a) 20 % faults (drops, 500s, 429s, delays): every sample completes, the funnel shows no failure.
(b) 60 % faults, delays left out, the role's `max_retries: 1`: about half of the samples fail after their one retry;
    the failures are counted
    alike in the funnel and the engine's errors, none reaches the cache, and a rerun through the healed proxy
    makes exactly the failed calls again and reuses every cached one.
"""

import random
import sqlite3
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from tests.engines.faulty_proxy import FaultyProxy
from tests.fixtures import with_shares

KEY = "synth/0"
N, QUESTIONS = 2, 6
RETRIES_B = 1  # (b)'s recipe: each call is tried twice
PHASES = 2  # a thinking budget without min_tokens: every sample is a think call, then an answer call
SEED = 2  # (a)'s proxy seed: its draws give 1 drop, 3 429s, 2 500s and 1 delay before the 24th relayed request
HTTP_KINDS = {"http_5xx", "http_429", "connection"}  # error_kind of the proxy's 500, 429 and drop


def recipe_text(port: int, model: str, max_retries: int = 6) -> str:
    """The recipe, its simple_cots share the one that sends exactly QUESTIONS of the shard's questions."""
    return with_shares(lambda share: _recipe_text(port, model, max_retries, share), QUESTIONS)


def _recipe_text(port: int, model: str, max_retries: int, share: float) -> str:
    return f"""
name: faults
sources: [{{name: synth, kind: synthetic_scenes, shards: 1, images_per_shard: 4, objects: [3, 3]}}]
models:
  vlm: {{backend: openai, model: {model}, base_url: "http://127.0.0.1:{port}/v1", max_retries: {max_retries}}}
  reasoner: {{backend: transformers, model: base_model}}
  verifier: {{backend: transformers, model: base_model}}
  small_solver: {{backend: transformers, model: base_model}}
stages:
  questions_grounded: {{llm: {{enabled: false}}}}
  questions_composed: {{rewrite: {{enabled: false}}}}
  simple_cots:
    share: {share!r}
    sampling: {{n: {N}, temperature: 0.7, top_p: 0.8, thinking: {{max_tokens: 6, answer_max_tokens: 4}}}}
"""


class Pipeline:
    """One recipe's definitions, artifact home and Dagster instance; `up_to_questions()` then `simple_cots()`."""

    def __init__(self, tmp_path: Path, port: int, model: str, instance: dg.DagsterInstance, max_retries: int = 6):
        path = tmp_path / "recipe.yaml"
        path.write_text(recipe_text(port, model, max_retries))
        self.home = tmp_path / "home"
        self.defs = build_definitions(load_recipe(path), base_path=str(self.home))
        self.instance = instance

    def materialize(self, *assets: str) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            self.defs.assets,
            selection=list(assets),
            resources=self.defs.resources,
            instance=self.instance,
            partition_key=KEY,
        )
        assert result.success
        return result

    def up_to_questions(self) -> None:
        self.materialize("images", "images_quarantine", "questions_grounded", "questions_composed", "questions")

    def simple_cots(self) -> tuple[dict, list[dict]]:
        """The step's metadata (plain values) and its stored table."""
        result = self.materialize("simple_cots")
        (mat,) = result.asset_materializations_for_node("simple_cots")
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        rows = pq.read_table(self.home / "storage" / "simple_cots" / f"{KEY}.parquet").to_pylist()
        return meta, rows

    def cache(self) -> dict[str, tuple]:
        """The call cache as stored: key -> (text, finish_reason, completion_tokens)."""
        with sqlite3.connect(self.home / "cache" / "calls.sqlite") as c:
            return {
                k: (t, f, n)
                for k, t, f, n in c.execute("SELECT key, text, finish_reason, completion_tokens FROM calls")
            }


def replay(seed: int, rate: float, kinds: tuple[str, ...], calls: int) -> Counter:
    """The proxy's counts when `calls` calls all succeed: its seeded draws in order (one random() per request, one
    choice() per fault, drawn without awaiting, so arrival order does not matter) until the `calls`-th request that
    reaches the server; every call then has succeeded, so no request follows."""
    rng, counts = random.Random(seed), Counter()
    while counts["forwarded"] + counts["delay"] < calls:
        counts[rng.choice(kinds) if rng.random() < rate else "forwarded"] += 1
    return counts


def faults(proxy: FaultyProxy) -> int:
    return sum(v for k, v in proxy.counts.items() if k != "forwarded")


def check_rows_complete(rows: list[dict], model: str, cache: dict) -> None:
    """Every stored row is an answered sample: a thought and an answer, its last call in the cache."""
    for r in rows:
        assert r["response"].startswith("<think>") and "</think>\n<answer>" in r["response"], r
        assert r["response"].endswith("</answer>") and r["thought"] and r["answer"], r
        assert 0 <= r["sample_index"] < N and r["completion_tokens"] > 0 and r["model"] == model
        assert r["grounding"] == "caption"  # SmolLM2 reads the image's text stand-in
        assert r["call_key"] in cache
    assert len({(r["question_id"], r["sample_index"]) for r in rows}) == len(rows)


def funnel_of(meta: dict) -> dict[str, int]:
    return dict(meta["funnel_counts"])


def test_every_sample_completes_through_20_percent_server_faults(served, tmp_path):
    with dg.instance_for_test() as instance, FaultyProxy(served["port"], fault_rate=0.2, seed=SEED) as proxy:
        p = Pipeline(tmp_path, proxy.port, served["model"], instance)
        p.up_to_questions()
        proxy.counts.clear()  # the question stages call no model
        meta, rows = p.simple_cots()
        cache = p.cache()
    funnel, rejects = funnel_of(meta), meta["rejects_by_reason"]
    sent = funnel["sent"]
    assert sent == QUESTIONS and funnel["samples"] == sent * N
    # nothing failed: no failed call in the funnel nor in the engine's errors
    assert not [r for r in rejects if r.startswith("call_failed")] and meta["llm/vlm/errors_by_kind"] == {}
    calls = meta["llm/vlm/calls"]
    assert calls == sent * N * PHASES and meta["llm/vlm/cache_hits"] == 0
    # the faults were real and retried: each call reached the server exactly once, after any number of faults
    assert proxy.counts == replay(SEED, 0.2, proxy.kinds, calls)
    assert {"drop", "500", "429"} <= set(proxy.counts), proxy.counts  # every kind of failure retried
    assert len(cache) == calls  # every call answered and cached
    # every question got its n samples: each kept as a row, or dropped for its text (never for a failure)
    check_rows_complete(rows, served["model"], cache)
    assert funnel["kept"] == len(rows) and len(rows) + sum(rejects.values()) == sent * N
    print(f"\n(a) proxy {dict(proxy.counts)}; funnel {funnel}; rejects {rejects}; rows {len(rows)}")


def test_samples_failing_after_their_retries_are_counted_and_never_cached(served, tmp_path):
    with (
        dg.instance_for_test() as instance,
        FaultyProxy(served["port"], fault_rate=0.6, kinds=("drop", "500", "429"), seed=5) as proxy,
    ):
        p = Pipeline(tmp_path, proxy.port, served["model"], instance, max_retries=RETRIES_B)
        p.up_to_questions()
        proxy.counts.clear()
        meta, rows = p.simple_cots()
        cache = p.cache()
        first = Counter(proxy.counts)

        # the server heals; the rerun of the step makes the failed calls only
        proxy.fault_rate = 0.0
        proxy.counts.clear()
        meta2, rows2 = p.simple_cots()
        cache2 = p.cache()
        second = Counter(proxy.counts)

    funnel, rejects, errors = funnel_of(meta), meta["rejects_by_reason"], meta["llm/vlm/errors_by_kind"]
    sent, samples = funnel["sent"], funnel["samples"]
    assert sent == QUESTIONS and samples == sent * N
    failed = sum(errors.values())
    # at 60 % faults per try a call fails both tries with p = .6^2 = .36, a sample (2 calls) with p = .59: about
    # half of the 12 samples fail; none failing at all has p = .41^12 < 3e-5
    assert 0 < failed <= samples, (errors, first)
    assert set(errors) <= HTTP_KINDS
    # the funnel's failures are the engine's, kind by kind (a failed phase fails its sample, counted once)
    assert {r.removeprefix("call_failed/"): n for r, n in rejects.items() if r.startswith("call_failed/")} == errors
    # counted from the table: the samples it lacks are the failures plus the replies dropped for their text
    text_rejects = sum(n for r, n in rejects.items() if not r.startswith("call_failed/"))
    assert samples - len(rows) == failed + text_rejects and funnel["kept"] == len(rows)
    check_rows_complete(rows, served["model"], cache)
    # a failed call was tried 1 + max_retries times, faulted each time; a call that succeeded reached the server once
    calls = meta["llm/vlm/calls"]
    assert first["forwarded"] == calls - failed
    assert sum(first.values()) - first["forwarded"] >= (1 + RETRIES_B) * failed
    # no failure was cached: the cache holds exactly the calls that succeeded, each a finished reply
    assert len(cache) == calls - failed
    assert all(fr in ("stop", "length") for _, fr, _ in cache.values())

    # the rerun: every cached call reused, only the failed samples' calls made again, nothing fails
    funnel2, rejects2 = funnel_of(meta2), meta2["rejects_by_reason"]
    assert meta2["llm/vlm/cache_hits"] == len(cache) and meta2["llm/vlm/errors_by_kind"] == {}
    remade = meta2["llm/vlm/calls"]
    assert (
        set(second) == {"forwarded"} and remade == second["forwarded"] and failed <= remade <= PHASES * failed
    )  # a failed answer phase: 1 call
    assert len(cache2) == len(cache) + remade and set(cache) <= set(cache2)
    assert not [r for r in rejects2 if r.startswith("call_failed")] and funnel2["samples"] == samples
    check_rows_complete(rows2, served["model"], cache2)
    assert {r["cot_id"] for r in rows} <= {r["cot_id"] for r in rows2}  # the answered samples, replayed unchanged
    assert len(rows2) + sum(rejects2.values()) == samples
    print(f"\n(b) proxy {dict(first)} then {dict(second)}; errors {errors}; rows {len(rows)} -> {len(rows2)}")
