"""OpenAI-compatible HTTP backend: vLLM serve, SGLang, `transformers serve`, llama.cpp, hosted APIs.

Async with a bounded number of requests in flight. Retries (exponential
backoff with jitter on 429, 5xx, connection errors and timeouts) are the
`openai` client's own. A call that still fails becomes an error sample with
its kind; it is never lost and never cached. Images travel as data URLs.
Prefill: either the server's `continue_final_message` (vLLM, SGLang) or the
completions endpoint with the chat template applied here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import openai

from lgt.engines.messages import convert_messages, image_url
from lgt.engines.types import Call, Sample, word_forms


def error_kind(e: Exception) -> str:
    if isinstance(e, openai.RateLimitError):
        return "http_429"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    if isinstance(e, openai.APIConnectionError):
        return "connection"
    if isinstance(e, openai.APIStatusError):
        return "http_5xx" if e.status_code >= 500 else "bad_request"
    return "backend"


class OpenAIBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        revision: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 6,
        timeout_s: float = 600.0,
        prefill_mode: str = "completions",
        tokenizer: str | None = None,
        vision: bool = False,
        bad_words: bool = False,
    ):
        """bad_words: the server takes vLLM's `bad_words` (banned_words are sent only then: strict servers
        reject unknown fields, and SGLang has no word ban); `bans_words` tells the engine."""
        if api_key_env:
            if not os.environ.get(api_key_env):
                raise ValueError(f"the API key variable {api_key_env} is not set")
            self._api_key = os.environ[api_key_env]  # held here only; never logged or keyed
        else:
            self._api_key = "EMPTY"
        self.base_url, self.model_id, self.revision = base_url, model, revision
        self.max_concurrency, self.max_retries, self.timeout_s = max_concurrency, max_retries, timeout_s
        self.prefill_mode, self.vision, self.bad_words = prefill_mode, vision, bad_words
        self._tokenizer_name = tokenizer or model
        self._tokenizer = None

    @property
    def bans_words(self) -> bool:
        return self.bad_words

    def __repr__(self) -> str:  # no key in logs
        return f"OpenAIBackend({self.base_url!r}, {self.model_id!r})"

    def _template(self, messages: list[dict], prefill: str) -> str:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_name)
        msgs = [*messages, {"role": "assistant", "content": prefill}]
        return self._tokenizer.apply_chat_template(msgs, tokenize=False, continue_final_message=True)

    def _params(self, call: Call) -> dict[str, Any]:
        s = call.request.sampling
        params: dict[str, Any] = {
            "model": self.model_id,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "seed": call.seed,
        }
        if s.stop:
            params["stop"] = list(s.stop)
        extra = {}
        if s.top_k:  # vLLM/SGLang sampling extensions; sent only when set (strict servers reject unknown fields)
            extra["top_k"] = s.top_k
        if s.repetition_penalty != 1.0:
            extra["repetition_penalty"] = s.repetition_penalty
        if s.banned_words and self.bad_words:  # vLLM's decode-time ban (vLLM adds the forms after a space)
            extra["bad_words"] = [f for w in s.banned_words for f in word_forms(w)]
        if extra:
            params["extra_body"] = extra
        return params

    async def _one(self, client: openai.AsyncOpenAI, call: Call) -> Sample:
        req = call.request
        params = self._params(call)
        t0 = time.monotonic()
        if req.prompt is not None or (req.prefill and self.prefill_mode == "completions"):
            prompt = req.prompt + req.prefill if req.prompt is not None else self._template(req.messages, req.prefill)
            resp = await client.completions.create(prompt=prompt, **params)
            choice = resp.choices[0]
            text = choice.text
        else:
            messages = convert_messages(req.messages, image_url)
            if req.prefill:
                messages.append({"role": "assistant", "content": req.prefill})
                params.setdefault("extra_body", {}).update(
                    {"continue_final_message": True, "add_generation_prompt": False}
                )
            resp = await client.chat.completions.create(messages=messages, **params)
            choice = resp.choices[0]
            text = choice.message.content or ""
        usage = resp.usage
        return Sample(
            text,
            "length" if choice.finish_reason == "length" else "stop",
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            time.monotonic() - t0,
        )

    async def _run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        sem = asyncio.Semaphore(self.max_concurrency)
        async with openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, max_retries=self.max_retries, timeout=self.timeout_s
        ) as client:

            async def guarded(call: Call) -> None:
                async with sem:
                    try:
                        sample = await self._one(client, call)
                    except Exception as e:  # after the client's retries: an error row, never a lost call
                        sample = Sample.failed(error_kind(e), e)
                on_result(call, sample)

            await asyncio.gather(*(guarded(c) for c in calls))

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        asyncio.run(self._run(calls, on_result))

    def close(self) -> None:
        pass
