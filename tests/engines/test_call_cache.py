"""The call cache: crash safety under kill -9, concurrent writers, what is and is not stored."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lgt.engines import ImageInput, Sample, Sampling
from lgt.engines.cache import CallCache, call_key

ROOT = Path(__file__).resolve().parents[2]

RUN = textwrap.dedent(
    """
    import sys
    from lgt.engines.cache import CallCache
    from lgt.engines.engine import Engine
    from lgt.engines.transformers_backend import TransformersBackend
    from lgt.engines import Request, Sampling
    N = int(sys.argv[3])
    reqs = [Request(messages=[{"role": "user", "content": f"Write a word about {i}."}],
                    sampling=Sampling(max_new_tokens=8, seed=i)) for i in range(N)]
    engine = Engine(TransformersBackend(sys.argv[1], batch_size=1), CallCache(sys.argv[2]))
    engine.generate(reqs)
    print("calls", engine.stats.calls, "hits", engine.stats.cache_hits)
    """
)


def test_kill_9_half_way_then_rerun_makes_only_the_missing_calls(smollm2, tmp_path):
    db, n = tmp_path / "calls.sqlite", 24
    script = tmp_path / "run.py"
    script.write_text(RUN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(smollm2), str(db), str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    done = 0
    while done < n // 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before half way"
        time.sleep(0.2)
        if db.exists():
            try:
                done = CallCache(db).count()
            except Exception:  # the table may not exist yet
                done = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = CallCache(db).count()
    assert n // 2 <= kept < n

    out = subprocess.run(
        [sys.executable, str(script), str(smollm2), str(db), str(n)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["calls", str(n - kept), "hits", str(kept)]
    assert CallCache(db).count() == n


WRITER = textwrap.dedent(
    """
    import sys
    from lgt.engines.cache import CallCache
    from lgt.engines.types import Sample
    cache = CallCache(sys.argv[1])
    for i in range(300):
        cache.put("m", Sample(f"text {sys.argv[2]} {i}", "stop", 1, 2, 0.1, key=f"{sys.argv[2]}-{i}"))
    """
)


def test_several_processes_write_at_once(tmp_path):
    db = tmp_path / "calls.sqlite"
    CallCache(db)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), w], cwd=ROOT) for w in "abcd"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    cache = CallCache(db)
    assert cache.count() == 1200
    got = cache.get_many(["a-0", "d-299", "zz"])
    assert got["d-299"].text == "text d 299" and got["a-0"].cached and "zz" not in got


def test_errors_are_refused_and_length_is_kept(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    with pytest.raises(ValueError, match="only finished samples"):
        cache.put("m", Sample("", None, error="http_5xx", key="k"))
    cache.put("m", Sample("cut", "length", 3, 8, 0.5, key="k2"))
    assert cache.get_many(["k2"])["k2"].finish_reason == "length"


def test_key_covers_model_revision_sampling_seed_sample_index_and_image_bytes():
    base = {"messages": [{"role": "user", "content": "hi"}], "sampling": Sampling().model_dump(), "sample_index": 0}
    k = call_key("m", "r1", base)
    assert k == call_key("m", "r1", dict(base))
    assert k != call_key("m2", "r1", base) and k != call_key("m", "r2", base)
    assert k != call_key("m", "r1", {**base, "sample_index": 1})
    assert k != call_key("m", "r1", {**base, "sampling": Sampling(seed=1).model_dump()})

    def img(b: bytes) -> dict:
        return {"messages": [{"role": "user", "content": [{"type": "image", "image": ImageInput(b)}]}]}

    assert call_key("m", None, img(b"a")) != call_key("m", None, img(b"b"))
    assert call_key("m", None, img(b"a")) == call_key("m", None, img(b"a"))
