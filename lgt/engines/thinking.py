"""Thinking budgets: s1's budget forcing, for every backend, as a chain of ordinary calls.

A sample whose sampling has `thinking` is made in phases, each an ordinary call
(own cache key, the sample's seed) whose prefill is everything written before it:

1. think: continue the reply for the budget left, stopping at `end` ("</think>");
2. a thought that stopped before `min_tokens` gets `continue_with` ("Wait,")
   appended and thinks again, at most `max_continues` times (forced_continue);
   one that used the whole budget is cut there (forced_close);
3. answer: `close` ("</think>\\n<answer>") is appended and the model writes at most
   `answer_max_tokens`, stopping at `answer_end`, which is written after it either way
   (`finish_reason` "length" says the answer was cut).

The sample's text is the whole continuation after the request's prefill: thought,
`close`, answer. A crash between phases loses nothing: every finished phase is
in the call cache and the rerun replays the chain from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lgt.engines.settings import Thinking
from lgt.engines.types import Request, Sample

__all__ = ["Chain"]


@dataclass
class Chain:
    """One sample's budget forcing: `first()` is the first call's request, `step(sample)` the next or the result."""

    request: Request  # as the model sees it (grounded); its prefill starts the reply
    thought: str = ""
    thought_tokens: int = 0
    continues: int = 0
    forced_close: bool = False
    answering: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = True

    @property
    def thinking(self) -> Thinking:
        return self.request.sampling.thinking

    def first(self) -> Request:
        return self._think()

    def step(self, s: Sample) -> Request | Sample:
        """The next phase's request, or the finished sample (a failed phase fails the sample)."""
        if not s.ok:
            return replace(s, forced_close=self.forced_close, forced_continue=self.continues > 0)
        self.prompt_tokens += s.prompt_tokens
        self.completion_tokens += s.completion_tokens
        self.latency_s += s.latency_s
        self.cached = self.cached and s.cached
        th = self.thinking
        if self.answering:  # the answer is closed even when cut at answer_max_tokens (finish_reason says so)
            return Sample(
                self.thought + th.close + s.text + th.answer_end,
                s.finish_reason,
                self.prompt_tokens,
                self.completion_tokens,
                self.latency_s,
                cached=self.cached,
                key=s.key,
                forced_close=self.forced_close,
                forced_continue=self.continues > 0,
            )
        self.thought += s.text
        self.thought_tokens += s.completion_tokens
        left = th.max_tokens - self.thought_tokens
        if s.finish_reason == "length" or left <= 0:
            self.forced_close = True
        elif self.thought_tokens < th.min_tokens and self.continues < th.max_continues:
            self.continues += 1
            self.thought += th.continue_with
            return self._think()
        self.answering = True
        return self._phase(th.close, th.answer_max_tokens, th.answer_end)

    def _think(self) -> Request:
        th = self.thinking
        return self._phase("", th.max_tokens - self.thought_tokens, th.end)

    def _phase(self, suffix: str, max_new_tokens: int, stop: str) -> Request:
        sampling = self.request.sampling
        sampling = sampling.model_copy(
            update={"thinking": None, "max_new_tokens": max_new_tokens, "stop": [stop, *sampling.stop]}
        )
        return replace(self.request, prefill=self.request.prefill + self.thought + suffix, sampling=sampling)
