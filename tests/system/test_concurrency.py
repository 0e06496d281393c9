"""Two runs of different partitions at once, in one LGT_HOME (one call cache) and one DAGSTER_HOME.

The real CLI materializes synth/0 and synth/1 up to `simple_cots`, which calls a real `transformers serve` through a
proxy that counts every request the server gets. The reference runs each partition alone, one after the other, in
a home of its own. Then both partitions start together in a second home, whose pool "llm" takes two steps; the proxy
holds the first call until the other run's first call arrives, so both runs are calling the server (and writing the
one cache) at the same time.

A duplicate is a call whose cache key the server was already asked for. The two partitions ask different questions
about different images, so they share no call: the reference's second partition gets no cache hit, and the calls
the two runs need are exactly the distinct keys the reference made.
"""

import subprocess
from pathlib import Path

from tests.system.cli import dagster, fresh_env, start, stop
from tests.system.counting import (
    ASSETS,
    PHASES,
    CountingProxy,
    cache_rows,
    llm_calls,
    materialize,
    recipe,
    sent_questions,
    small_served,  # noqa: F401 - a fixture
    tables,
)

PARTS = ("synth/0", "synth/1")
QUESTIONS = 3  # of synth/0, greedy, n 1: one sample per question (synth/1 sends those in the same share)


def run_together(env: dict[str, str], logs: Path) -> None:
    """Both partitions' CLI runs started at once; both must succeed."""
    procs = {p: start(env, *materialize(p), log=logs / f"{p.replace('/', '_')}.log") for p in PARTS}
    for p, proc in procs.items():
        try:
            proc.wait(600)
        except subprocess.TimeoutExpired:
            stop(proc)
        assert proc.returncode == 0, (p, (logs / f"{p.replace('/', '_')}.log").read_text()[-3000:])


def test_two_partitions_at_once_share_the_call_cache_without_loss_or_duplicates(tmp_path, small_served):  # noqa: F811
    with CountingProxy(small_served["port"]) as proxy:
        text = recipe(small_served["model"], proxy.port, QUESTIONS, concurrency=1)
        per_part = {p: sent_questions(text, p) * PHASES for p in PARTS}  # distinct calls per partition
        total = sum(per_part.values())

        alone = fresh_env(tmp_path, text, "alone")
        for p in PARTS:
            out = dagster(alone, *materialize(p))
            assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
            assert llm_calls(alone, p) == (per_part[p], 0)  # synth/1 finds none of synth/0's calls in the cache
        reference = cache_rows(alone)
        assert proxy.counts["forwarded"] == len(reference) == total

        both = fresh_env(tmp_path, text, "both")
        # the trace stages share pool "llm", 1 step at a time by the project's dagster.yaml; with the roles on a
        # server, two may call it at once (dagster.yaml says how)
        out = dagster(both, "instance", "concurrency", "set", "llm", "2")
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        (tmp_path / "together").mkdir()
        proxy.set_barrier(2)
        run_together(both, tmp_path / "together")
        made = proxy.counts["forwarded"] - total
        calls = {p: llm_calls(both, p) for p in PARTS}
        print(f"together: {made} calls forwarded, at most {proxy.max_in_flight} at once; metadata {calls}")
        assert proxy.max_in_flight == 2  # a call of each run at the server at once
        assert made == total  # each distinct call once: no duplicate
        assert calls == {p: (per_part[p], 0) for p in PARTS}
        assert cache_rows(both) == reference  # no call lost, each reply the one made alone

        for p in PARTS:
            got, want = tables(both, p), tables(alone, p)
            assert want["simple_cots"].num_rows > 0
            assert set(got["simple_cots"]["call_key"].to_pylist()) <= set(reference)
            for asset in ASSETS:
                assert got[asset].equals(want[asset]), (p, asset)

        # both again at once: every call comes from the cache
        (tmp_path / "again").mkdir()
        proxy.set_barrier(1)
        run_together(both, tmp_path / "again")
        assert proxy.counts["forwarded"] == 2 * total
        assert {p: llm_calls(both, p) for p in PARTS} == {p: (0, per_part[p]) for p in PARTS}
