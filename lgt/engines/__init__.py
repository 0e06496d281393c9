"""One batched engine API over transformers, OpenAI-compatible servers, vLLM and SGLang."""

from __future__ import annotations

from lgt.engines.cache import CallCache
from lgt.engines.engine import Backend, Engine, EngineFor, EngineStats
from lgt.engines.settings import ModelRole, Sampling
from lgt.engines.types import Call, ImageInput, Request, Result, Sample

__all__ = [
    "Backend",
    "Call",
    "CallCache",
    "Engine",
    "EngineFor",
    "EngineStats",
    "ImageInput",
    "ModelRole",
    "Request",
    "Result",
    "Sample",
    "Sampling",
    "make_backend",
]


def make_backend(role: ModelRole, model: str, server_url: str | None = None) -> Backend:
    """The backend a recipe role names; `server_url` when the role's server was launched for it."""
    if role.backend == "transformers":
        from lgt.engines.transformers_backend import TransformersBackend

        return TransformersBackend(
            model,
            role.revision,
            batch_size=role.batch_size,
            batch_tokens=role.batch_tokens,
            vision=role.vision,
            threads=role.threads,
        )
    if role.backend == "openai" or server_url:
        from lgt.engines.openai_backend import OpenAIBackend

        launched = server_url is not None  # vLLM/SGLang servers continue a prefilled turn natively
        return OpenAIBackend(
            server_url or role.base_url,
            model,
            api_key_env=role.api_key_env,
            revision=role.revision,
            max_concurrency=role.max_concurrency,
            max_retries=role.max_retries,
            prefill_mode="continue_final_message" if launched else role.prefill_mode,
            tokenizer=role.tokenizer,
            vision=bool(role.vision),
            bad_words=role.http_bad_words(launched),
        )
    if role.backend == "vllm":
        from lgt.engines.offline import VLLMBackend

        return VLLMBackend(model, role.revision, vision=role.vision, python=role.python, **role.engine_args)
    if role.backend == "sglang":
        from lgt.engines.offline import SGLangBackend

        return SGLangBackend(model, role.revision, vision=role.vision, **role.engine_args)
    raise ValueError(f"unknown backend {role.backend!r}")
