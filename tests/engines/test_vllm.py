"""vLLM for real on this CPU: its CPU build in .venv-vllm/ (scripts/setup-vllm.sh), the embedded SmolLM2.

Skipped, with the reason printed, where no interpreter has vLLM; CI sets LGT_REQUIRE_VLLM=1 so that a missing
vLLM fails there instead.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lgt.engines import Call, ModelRole, Request, Sampling, make_backend
from lgt.engines.cache import CallCache
from lgt.engines.offline import vllm_python
from lgt.engines.server import LaunchedServer, server_flags

ROOT = Path(__file__).resolve().parents[2]

try:
    PYTHON = vllm_python()
except RuntimeError as e:
    PYTHON = None
    if os.environ.get("LGT_REQUIRE_VLLM") == "1":
        raise
    pytestmark = pytest.mark.skip(reason=f"no vLLM here: {e}")

ASK = [{"role": "user", "content": "Name three colours."}]


MAX_LEN = 4000  # the roles' engine_args: a context shorter than SmolLM2's 8,192, so a test can see it applied


@pytest.fixture(scope="module", params=["offline", "launched"])
def vllm(request, smollm2):
    """The same tests through vLLM's engine in our worker, and through `vllm serve` started by the launcher; both
    from a recipe role with engine_args, passed as the engines resource passes them."""
    args = {"max_model_len": MAX_LEN}
    if request.param == "offline":
        backend = make_backend(ModelRole(backend="vllm", model=str(smollm2), engine_args=args), str(smollm2))
        yield backend
        backend.close()
        return
    role = ModelRole(backend="vllm", launch=True, model=str(smollm2), engine_args=args)
    flags = server_flags(role.engine_args)
    with LaunchedServer(
        "vllm", str(smollm2), extra_args=flags, startup_timeout_s=600, env={"HF_HUB_OFFLINE": "1"}
    ) as server:
        yield make_backend(role, str(smollm2), server_url=server.base_url)


def _run(backend, reqs):
    calls = [Call(i, 0, r, f"k{i}", r.sampling.seed) for i, r in enumerate(reqs)]
    got = {}
    backend.run(calls, lambda c, s: got.__setitem__(c.index, s))
    return [got[i] for i in range(len(reqs))]


def test_seeds_reproduce_and_differ(vllm):
    reqs = [Request(messages=ASK, sampling=Sampling(temperature=0.9, max_new_tokens=24, seed=s)) for s in (1, 1, 2)]
    a, b, c = _run(vllm, reqs)
    assert a.ok and a.text and a.text == b.text and a.text != c.text
    assert a.completion_tokens > 0 and a.prompt_tokens > 0


def test_prefill_is_continued(vllm, smollm2):
    """Greedy after a prefill equals greedy on the raw prompt that ends in that prefill."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    msgs = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "<think>Hello"}]
    raw = tok.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    chat, plain = _run(
        vllm,
        [Request(messages=msgs[:1], prefill="<think>Hello", sampling=greedy), Request(prompt=raw, sampling=greedy)],
    )
    assert chat.text and chat.text == plain.text


def test_banned_words_and_stop_strings(vllm):
    free = Sampling(temperature=0.0, max_new_tokens=48)
    (said,) = _run(vllm, [Request(messages=ASK, sampling=free)])
    word = next(w for w in ("red", "blue", "green") if w in said.text.lower())  # a colour it names unbanned
    banned = Sampling(temperature=0.0, max_new_tokens=48, banned_words=[word])
    stopped = Sampling(temperature=0.0, max_new_tokens=48, stop=[word])
    b, s = _run(vllm, [Request(messages=ASK, sampling=banned), Request(messages=ASK, sampling=stopped)])
    assert b.text and word not in b.text.lower()
    assert s.finish_reason == "stop" and word not in s.text and said.text.startswith(s.text)


def test_seeded_prompts_beyond_one_steps_token_budget(vllm):
    """Seeded samples whose prompts pass vLLM's 4,096-token step budget together (~9,300 tokens here) take several
    scheduler steps; with chunked prefill the CPU build died on them ("CPU Generator does not use offset"), so on a
    CPU prompts are prefilled whole. Every sample comes back, a seed repeated in one batch gives the same text, and
    each request run alone comes back too. (Not the same text as in the batch: vLLM's CPU kernels are not batch
    invariant, and a seeded sample at temperature 0.9 drifts after a few tokens on some CPUs.)"""
    colours = ("red", "blue", "green")
    texts = [" ".join(f"item {i} is {colours[(i + k) % 3]}." for i in range(400)) for k in range(3)]  # ~3,100 tokens
    reqs = [
        Request(
            messages=[{"role": "user", "content": t + " Which colour is item 7?"}],
            sampling=Sampling(temperature=0.9, max_new_tokens=8, seed=10 + k),
        )
        for k, t in enumerate(texts)
    ]
    together = _run(vllm, reqs + reqs[:1])  # the first request twice: same seed, same text
    assert len(together) == 4 and all(s.ok and s.prompt_tokens > 3000 for s in together), [
        s.error_detail for s in together
    ]
    assert sum(s.prompt_tokens for s in together) > 4096
    assert together[0].text == together[3].text
    alone = [_run(vllm, [r])[0] for r in reqs]
    assert all(s.ok and s.text for s in alone), [s.error_detail for s in alone]


def test_a_roles_engine_args_reach_vllm(vllm):
    """max_model_len 4,000 from the role's engine_args: a ~4,700-token prompt fails alone (it would fit SmolLM2's
    own 8,192), with vLLM's error naming the limit; a short one in the same batch is answered."""
    text = " ".join(f"item {i} is red." for i in range(600))
    long, short = _run(
        vllm,
        [
            Request(messages=[{"role": "user", "content": text}], sampling=Sampling(temperature=0, max_new_tokens=4)),
            Request(messages=ASK, sampling=Sampling(temperature=0, max_new_tokens=4)),
        ],
    )
    assert short.ok and short.text
    assert not long.ok and str(MAX_LEN) in (long.error_detail or ""), long.error_detail


RUN = textwrap.dedent(
    """
    import sys
    from lgt.engines import Engine, Request, Sampling
    from lgt.engines.cache import CallCache
    from lgt.engines.offline import VLLMBackend
    model, db, n, pidfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    # lengths differ, so samples finish one after another
    reqs = [Request(messages=[{"role": "user", "content": f"Tell a long story about the number {i}."}],
                    sampling=Sampling(temperature=0.0, max_new_tokens=16 * (i + 1))) for i in range(n)]
    backend = VLLMBackend(model)
    open(pidfile, "w").write(str(backend.proc.pid))
    engine = Engine(backend, CallCache(db))
    engine.generate(reqs)
    print("calls", engine.stats.calls, "hits", engine.stats.cache_hits)
    backend.close()
    """
)


def _alive(pid: int) -> bool:
    """Running, not gone or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_half_way_then_rerun_makes_only_the_missing_calls(smollm2, tmp_path):
    db, n = tmp_path / "calls.sqlite", 12
    script = tmp_path / "run.py"
    script.write_text(RUN)
    pidfile = tmp_path / "worker.pid"
    cmd = [sys.executable, str(script), str(smollm2), str(db), str(n), str(pidfile)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, done = time.monotonic() + 600, 0
    while done < n // 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a third of the way"
        time.sleep(0.1)
        try:
            done = CallCache(db).count() if db.exists() else 0
        except Exception:  # the table may not exist yet
            done = 0
    os.killpg(proc.pid, signal.SIGKILL)  # the run; its vLLM worker, in a session of its own, sees it go and stops
    proc.wait()
    kept = CallCache(db).count()
    assert n // 3 <= kept < n
    worker = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while _alive(worker):
        assert time.monotonic() < deadline, "the orphaned vLLM worker is still running"
        time.sleep(0.5)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["calls", str(n - kept), "hits", str(kept)]
    assert CallCache(db).count() == n
