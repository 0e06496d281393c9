"""Engine settings a recipe declares: sampling and a model role (backend, model, limits).

They live here, not in the recipe, so that the engine library imports nothing else of `lgt`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelRole", "Sampling", "Thinking"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thinking(_Strict):
    """A thinking budget (s1's budget forcing), enforced by the engine for every backend; see engines/thinking.py."""

    max_tokens: int = Field(ge=1, description="the thought is closed after this many tokens (forced_close)")
    min_tokens: int = Field(
        0, ge=0, description="a thought that ends earlier gets `continue_with` appended and goes on (forced_continue)"
    )
    max_continues: int = Field(2, ge=0, description="at most this many continuations per sample")
    end: str = Field("</think>", min_length=1, description="the delimiter a model writes to end its thought")
    close: str = Field("</think>\n<answer>", min_length=1, description="written after the thought, before the answer")
    continue_with: str = Field("\nWait,", min_length=1, description="appended to a thought that ended too early")
    answer_max_tokens: int = Field(32, ge=1, description="new tokens for the answer after `close`")
    answer_end: str = Field("</answer>", min_length=1, description="the answer stops here; written after it")

    @model_validator(mode="after")
    def _min_below_max(self) -> Thinking:
        if self.min_tokens >= self.max_tokens:
            raise ValueError(f"thinking.min_tokens ({self.min_tokens}) must be below max_tokens ({self.max_tokens})")
        return self


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
    thinking: Thinking | None = Field(
        None,
        description="a thinking budget: the reply is a thought, then `close`, then an answer; its token limits "
        "replace max_new_tokens",
    )


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
    max_retries: int = Field(
        6,
        ge=0,
        description="HTTP backends: retries of a failed call (dropped connection, 5xx, 429) before it is an "
        "error, with the client's backoff; a call that still fails is never cached",
    )
    batch_size: int = Field(32, ge=1, description="at most this many rows per batch (transformers backend)")
    batch_tokens: int = Field(
        2048, ge=1, description="at most this many padded prompt tokens per batch (transformers backend)"
    )
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads (transformers backend); empty: $LGT_TORCH_THREADS, else all cores"
    )
    vision: bool | None = Field(None, description="whether the model takes images; default: read from its config")
    python: str | None = Field(
        None,
        description="vllm: the interpreter that has vLLM; default $LGT_VLLM_PYTHON, this one, else .venv-vllm/",
    )
    bad_words: bool | None = Field(
        None,
        description="HTTP: whether the server bans words at decode time through vLLM's `bad_words` sampling "
        "parameter (vLLM serve does; SGLang has no word ban); empty: true for a launched vLLM server, false for "
        "`backend: openai` (strict servers reject unknown fields). Transformers and offline vLLM always ban",
    )
    engine_args: dict[str, str | int | float | bool] = Field(
        {},
        description="vllm/sglang: the engine's own settings, as vllm.LLM / sglang.Engine keyword arguments; a "
        "launched server gets them as --flags (true: --flag, false: --no-flag). Data and tensor parallelism: "
        "{data_parallel_size: 2, tensor_parallel_size: 4} (vLLM), {dp_size: 2, tp_size: 4} (SGLang)",
    )
    max_pixels: int | None = Field(
        262_144,
        ge=1,
        description="images a vision model sees are scaled down to at most this many pixels, aspect kept (LPT: "
        "512x512 = 262,144); the exports ship the vlm role's size, so the student trains on what the teacher saw; "
        "empty: full size",
    )
    sampling: Sampling = Sampling()

    @model_validator(mode="after")
    def _server_needs_url(self) -> ModelRole:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url")
        return self

    @model_validator(mode="after")
    def _bad_words_where_a_server_takes_them(self) -> ModelRole:
        if self.bad_words and self.backend == "sglang":  # its sampling params: logit_bias on single tokens, no words
            raise ValueError("bad_words: SGLang has no decode-time word ban; leave it empty or false")
        if self.bad_words is not None and (
            self.backend == "transformers" or (self.backend == "vllm" and not self.launch)
        ):
            raise ValueError(f"bad_words applies to HTTP servers; backend {self.backend!r} here bans words itself")
        return self

    @model_validator(mode="after")
    def _engine_args_for_engines_that_take_them(self) -> ModelRole:
        if self.engine_args and self.backend not in ("vllm", "sglang"):
            raise ValueError(
                f"engine_args are vLLM's or SGLang's settings; backend {self.backend!r} takes none (a remote "
                "server's parallelism is set where it is started)"
            )
        return self

    def http_bad_words(self, launched: bool) -> bool:
        """Whether this role's HTTP backend sends `bad_words`: as set, else only to a vLLM server it launched."""
        return self.bad_words if self.bad_words is not None else launched and self.backend == "vllm"
