"""vLLM (in a worker process) and SGLang (in process), imported only when a role asks for them.

Both get every call of a round at once, so their schedulers keep the device busy,
with prefix caching on (shared system prompts and prefills are computed once).
Images go in as multi-modal data. A missing package is a clear error, not an
import failure deep inside a run.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lgt.engines.messages import render_prompt
from lgt.engines.types import Call, Sample, word_forms


def _require(package: str, backend: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise RuntimeError(f"backend {backend!r} needs the {package} package: pip install -e '.[gpu]' on a GPU machine")


REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("vllm_worker.py")


def vllm_python(configured: str | None = None) -> str:
    """The interpreter that runs vLLM: the role's `python`, $LGT_VLLM_PYTHON, this one if it has vLLM (the `gpu`
    extra), else the project's CPU environment .venv-vllm/ (scripts/setup-vllm.sh)."""
    import importlib.util

    if configured or os.environ.get("LGT_VLLM_PYTHON"):
        return configured or os.environ["LGT_VLLM_PYTHON"]
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    local = REPO / ".venv-vllm" / "bin" / "python"
    if local.exists():
        return str(local)
    raise RuntimeError(
        "backend 'vllm' needs vLLM: pip install -e '.[gpu]' on a GPU machine, or scripts/setup-vllm.sh for the "
        "CPU build in .venv-vllm/, or set LGT_VLLM_PYTHON to an interpreter that has it"
    )


class VLLMBackend:
    """vLLM's engine in a worker process (lgt/engines/vllm_worker.py), started once and fed every call of a round.

    Its answers stream back one per finished sample and go to the call cache at once (kill -9 keeps them). The
    worker runs under the interpreter `vllm_python` finds, so vLLM's CPU build can live in its own environment.
    """

    bans_words = True  # SamplingParams.bad_words

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        vision: bool | None = None,
        python: str | None = None,
        startup_timeout_s: float = 600.0,
        **engine_args,
    ):
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        self.model_id, self.revision = model, revision
        config = AutoConfig.from_pretrained(model, revision=revision)
        self.vision = vision if vision is not None else hasattr(config, "vision_config")
        self.templater = (AutoProcessor if self.vision else AutoTokenizer).from_pretrained(model, revision=revision)
        args = {"model": model, "revision": revision, "enable_prefix_caching": True, **engine_args}
        env = dict(os.environ)
        if not has_cuda():  # vLLM's CPU build: a KV cache that fits beside the model, no graph capture
            args.setdefault("enforce_eager", True)
            # vLLM's CPU build (0.32) dies when a seeded request's prompt is prefilled in chunks: it rewinds the
            # request's torch.Generator by an offset, which CPU generators lack ("CPU Generator does not use
            # offset"). Chunks come once a step's prompts pass 4,096 tokens (256 short prompts at once do), so on
            # a CPU each prompt is prefilled whole (`vllm serve` too, lgt/engines/server.py; test_vllm.py)
            args.setdefault("enable_chunked_prefill", False)
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        self.log_path = Path(tempfile.mkstemp(prefix="lgt-vllm-worker-", suffix=".log")[1])
        self.proc = subprocess.Popen(
            # -P: lgt/engines/ must not go on sys.path (its types.py would shadow the standard library's)
            [vllm_python(python), "-P", str(WORKER), json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "w"),
            text=True,
            env=env,
            start_new_session=True,
        )
        line = self._read(startup_timeout_s)
        if not line or not json.loads(line).get("ready"):
            self.close()
            raise RuntimeError(f"the vLLM worker did not start (log: {self.log_path}): {self._log_tail(2000)}")

    def _read(self, timeout_s: float | None = None) -> str:
        """The worker's next line; '' when it has exited (or not answered within timeout_s)."""
        if timeout_s is not None and not select.select([self.proc.stdout], [], [], timeout_s)[0]:
            return ""
        return self.proc.stdout.readline()

    def _log_tail(self, n: int) -> str:
        try:
            return self.log_path.read_text()[-n:].strip()
        except OSError:
            return ""

    def _params(self, call: Call) -> dict:
        s = call.request.sampling
        return {
            "n": 1,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k or 0,
            "repetition_penalty": s.repetition_penalty,
            "max_tokens": s.max_new_tokens,
            "seed": call.seed,
            "stop": list(s.stop) or None,
            "bad_words": [f for w in s.banned_words for f in word_forms(w)] or None,  # vLLM adds the spaced forms
        }

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        t0 = time.monotonic()
        pending = {c.key: c for c in calls}
        batch = [
            {
                "id": c.key,
                "prompt": render_prompt(self.templater, c.request),
                "params": self._params(c),
                "images": [base64.b64encode(i.data).decode() for i in c.request.images()] if self.vision else [],
            }
            for c in calls
        ]
        try:
            self.proc.stdin.write(json.dumps({"requests": batch}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the worker is gone: reading says so below
        while True:  # up to the worker's "done", so that no line of this round is left for the next
            line = self._read()
            if not line:
                # the path first and a short tail: a sample's error_detail keeps 500 characters
                err = RuntimeError(f"the vLLM worker exited (log: {self.log_path}): {self._log_tail(300)}")
                for c in pending.values():
                    on_result(c, Sample.failed("backend", err))
                return
            msg = json.loads(line)
            if "done" in msg:
                for c in pending.values():  # not expected: every request ends finished or with an error
                    on_result(c, Sample.failed("backend", RuntimeError("the vLLM worker returned no sample")))
                return
            call = pending.pop(msg["id"])
            if "error" in msg:
                on_result(call, Sample.failed("backend", RuntimeError(msg["error"])))
                continue
            reason = "length" if msg["finish_reason"] == "length" else "stop"
            latency = time.monotonic() - t0
            on_result(call, Sample(msg["text"], reason, msg["prompt_tokens"], msg["completion_tokens"], latency))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


class SGLangBackend:
    bans_words = False  # SGLang's sampling params have no word ban (logit_bias works on single token ids only)

    def __init__(self, model: str, revision: str | None = None, vision: bool | None = None, **engine_args):
        _require("sglang", "sglang")
        import sglang
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        self.model_id, self.revision = model, revision
        config = AutoConfig.from_pretrained(model, revision=revision)
        self.vision = vision if vision is not None else hasattr(config, "vision_config")
        self.templater = (AutoProcessor if self.vision else AutoTokenizer).from_pretrained(model, revision=revision)
        self.engine = sglang.Engine(model_path=model, revision=revision, **engine_args)  # radix cache: prefix caching

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        """Every call goes in at once as its own request (SGLang's scheduler batches them) and is reported the
        moment it finishes, so the call cache keeps each finished sample if the run is killed later."""
        import asyncio

        from PIL import Image

        t0 = time.monotonic()

        async def one(c: Call) -> None:
            s = c.request.sampling
            params = {
                "temperature": s.temperature,
                "top_p": s.top_p,
                "top_k": s.top_k or -1,
                "repetition_penalty": s.repetition_penalty,
                "max_new_tokens": s.max_new_tokens,
                "stop": list(s.stop) or None,
                "sampling_seed": c.seed,
            }
            images = [Image.open(io.BytesIO(i.data)).convert("RGB") for i in c.request.images()] if self.vision else []
            try:
                o = await self.engine.async_generate(
                    prompt=render_prompt(self.templater, c.request), sampling_params=params, image_data=images or None
                )
            except Exception as e:  # one bad request fails alone
                on_result(c, Sample.failed("backend", e))
                return
            meta = o.get("meta_info", {})
            reason = (meta.get("finish_reason") or {}).get("type")
            sample = Sample(
                o["text"],
                "length" if reason == "length" else "stop",
                meta.get("prompt_tokens", 0),
                meta.get("completion_tokens", 0),
                time.monotonic() - t0,
            )
            on_result(c, sample)

        async def all_calls() -> None:
            await asyncio.gather(*(one(c) for c in calls))

        self.engine.loop.run_until_complete(all_calls())  # the event loop SGLang's engine was made on

    def close(self) -> None:
        self.engine.shutdown()
