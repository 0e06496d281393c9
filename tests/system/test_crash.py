"""`kill -9` in the middle of an LLM stage, then a rerun: no call is paid twice and the tables are a clean run's.

The real CLI materializes one synthetic shard up to `simple_cots`, which calls a real `transformers serve` through a
proxy that counts every request the server gets. A clean run in one LGT_HOME counts C calls. A second LGT_HOME runs
the same command; the proxy forwards only the first k calls and holds the next ones, so the run is killed (SIGKILL
to its process group) while it waits on the server with every forwarded call answered: nothing is in flight at the
server, and the k calls are all it cost. The rerun must make exactly the C - k calls the cache lacks.

With C = 6, one call in flight at the kill would already be 17 % more than a clean run, so the 1.02 x C bound of the
issue can hold only when the kill finds the server idle; the holding proxy is what arranges that here.
"""

import shutil
import signal
from pathlib import Path

from tests.system.cli import ROOT, dagster, fresh_env, start, stop
from tests.system.counting import (
    ASSETS,
    PHASES,
    CountingProxy,
    cache_rows,
    llm_calls,
    materialize,
    recipe,
    small_served,  # noqa: F401 - a fixture
    tables,
    wait_for,
)

KEY = "synth/0"
QUESTIONS = 3  # greedy, n 1: one sample per question
C = QUESTIONS * PHASES  # 6 calls: the think round (3), then the answer round (3)
K = C // 2 + 1  # killed in the answer round: every thought and one answer are cached


def test_kill_9_halfway_through_simple_cots_then_rerun(tmp_path, small_served):  # noqa: F811
    with CountingProxy(small_served["port"]) as proxy:
        text = recipe(small_served["model"], proxy.port, QUESTIONS, concurrency=2)

        clean = fresh_env(tmp_path, text, "clean")
        out = dagster(clean, *materialize(KEY))
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        assert proxy.counts["forwarded"] == C
        assert llm_calls(clean, KEY) == (C, 0)
        assert len(cache_rows(clean)) == C

        # a Dagster instance of its own that already has the project's settings (pool "llm" limited to 1), so the
        # killed run holds the pool's one slot: the rerun's definitions must find the run dead and free the slot
        crash = fresh_env(tmp_path, text, "crash")
        shutil.copy(ROOT / "dagster.yaml", Path(crash["DAGSTER_HOME"]) / "dagster.yaml")
        proxy.limit = proxy.admitted + K
        proc = start(crash, *materialize(KEY), log=tmp_path / "crash.log")
        # killed once the run waits on a held call and the K forwarded ones are answered and committed
        running = lambda: proc.poll() is None  # noqa: E731
        wait_for(lambda: proxy.counts["held"] >= 1 and proxy.in_flight == 0, 600, "held call", running)
        wait_for(lambda: len(cache_rows(crash)) == K, 60, "commit of the K answered calls", running)
        stop(proc, signal.SIGKILL)
        at_kill = proxy.counts["forwarded"] - C
        assert proc.returncode == -signal.SIGKILL
        assert at_kill == K and len(cache_rows(crash)) == K
        storage = tmp_path / "crash" / "lgt" / "storage"
        assert (storage / "questions" / f"{KEY}.parquet").exists()  # killed inside simple_cots, after its inputs
        assert not (storage / "simple_cots" / f"{KEY}.parquet").exists()

        proxy.limit = None
        out = dagster(crash, *materialize(KEY), timeout=400)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        rerun = proxy.counts["forwarded"] - C - at_kill
        total = at_kill + rerun
        print(f"clean C={C}, calls at the kill {at_kill} (held {proxy.counts['held']}), rerun {rerun}, "
              f"total {total}, ratio {total / C:.3f}")  # fmt: skip
        assert rerun == C - K  # only the missing calls
        assert total <= 1.02 * C
        assert llm_calls(crash, KEY) == (C - K, K)  # the rerun's metadata: the cached calls are hits
        assert "had no live process left; marked failed, its pool slots freed" in out.stderr

    # the same calls, the same replies, the same tables as the clean run
    assert cache_rows(crash) == cache_rows(clean)
    got, want = tables(crash, KEY), tables(clean, KEY)
    assert want["simple_cots"].num_rows > 0
    for asset in ASSETS:
        assert got[asset].equals(want[asset]), asset
