"""Engine settings a recipe declares: sampling and a model role (backend, model, limits).

They live here, not in the recipe, so that the engine library imports nothing else of `lgt`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelRole", "Sampling"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(_Strict):
    n: int = Field(1, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float = Field(1.0, gt=0)
    max_new_tokens: int = Field(256, ge=1)
    seed: int = 0
    stop: list[str] = []
    banned_words: list[str] = Field([], description="never generated where the backend can ban them")


class ModelRole(_Strict):
    backend: Literal["transformers", "openai", "vllm", "sglang"]
    launch: bool = Field(
        False, description="vllm/sglang: start `vllm serve` / sglang's server as a subprocess and talk HTTP"
    )
    model: str = Field(min_length=1, description="checkpoint dir, hub id or the asset name 'base_model'")
    revision: str | None = None
    base_url: str | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    tokenizer: str | None = Field(
        None, description="local tokenizer for client-side chat templates (prefill over HTTP)"
    )
    prefill_mode: Literal["completions", "continue_final_message"] = Field(
        "completions", description="how an HTTP server continues a prefilled assistant turn"
    )
    max_concurrency: int = Field(16, ge=1, description="requests in flight (HTTP backends)")
    batch_size: int = Field(16, ge=1, description="rows per generate call (in-process backends)")
    vision: bool | None = Field(None, description="whether the model takes images; default: read from its config")
    sampling: Sampling = Sampling()

    @model_validator(mode="after")
    def _server_needs_url(self) -> ModelRole:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url")
        return self
