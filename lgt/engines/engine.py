"""The one batched engine API: cache lookup, grounding, backend calls, stats, progress.

`Engine.generate(requests)` returns results in request order. Each sample is a
separate call with its own key and seed, so it is cached, retried and
reproduced on its own; a backend reports each sample as it finishes and the
engine commits it to the cache at once.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from lgt.engines.cache import CallCache, call_key
from lgt.engines.types import Call, Request, Result, Sample


class Backend(Protocol):
    model_id: str
    revision: str | None
    vision: bool

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        """Generate every call, reporting each sample (or its error) once, in any order."""

    def close(self) -> None: ...


@dataclass
class EngineStats:
    samples: int = 0
    calls: int = 0  # samples sent to the backend
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: Counter = field(default_factory=Counter)
    finish_reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "errors_by_kind": dict(self.errors),
            "finish_reasons": dict(self.finish_reasons),
            "seconds": round(self.seconds, 2),
        }


class NoVision(ValueError):
    pass


def ground(request: Request, vision: bool) -> tuple[Request, str]:
    """The request as the model will see it: images kept, or replaced by their text stand-ins."""
    if not request.messages or not request.images():
        return request, "text"
    if vision:
        return request, "image"
    messages = []
    for m in request.messages:
        content = m.get("content")
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.get("type") == "image":
                    if part["image"].stand_in is None:
                        raise NoVision("the model has no vision and an image has no text stand-in")
                    texts.append(part["image"].stand_in)
                else:
                    texts.append(part["text"])
            content = "\n\n".join(texts)
        messages.append({**m, "content": content})
    return replace(request, messages=messages), "caption"


def _key_payload(req: Request, sample_index: int) -> dict[str, Any]:
    sampling = req.sampling.model_dump(mode="json", exclude={"n"})
    return {
        "messages": req.messages,
        "prompt": req.prompt,
        "prefill": req.prefill,
        "sampling": sampling,
        "sample_index": sample_index,
    }


class _Progress:
    """A tqdm bar (on a terminal) and a log line every `log_every_s` seconds and at the last call."""

    def __init__(
        self,
        total: int,
        start: float,
        stats: EngineStats,
        desc: str,
        bar: bool,
        log: Callable[[str], None] | None,
        log_every_s: float,
    ):
        self.total, self.start, self.stats, self.log, self.log_every_s = total, start, stats, log, log_every_s
        self.done = 0
        self.last_log = time.monotonic()
        self.bar = None
        if bar and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="call")

    def update(self) -> None:
        """One more call finished."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        now = time.monotonic()
        if self.log and (now - self.last_log >= self.log_every_s or self.done == self.total):
            self.last_log = now
            el = now - self.start
            tps = self.stats.completion_tokens / el if el else 0.0
            eta = el / self.done * (self.total - self.done)
            self.log(
                f"{self.done}/{self.total} calls, {self.stats.cache_hits} cached, {tps:.1f} tokens/s, ETA {eta:.0f}s"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Engine:
    def __init__(
        self,
        backend: Backend,
        cache: CallCache | None = None,
        log: Callable[[str], None] | None = None,
        log_every_s: float = 10.0,
        progress_bar: bool | None = None,
    ):
        self.backend, self.cache, self.log, self.log_every_s = backend, cache, log, log_every_s
        self.progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
        self.stats = EngineStats()

    def keys(self, requests: Sequence[Request]) -> list[list[str]]:
        return [[c.key for c in self._calls(i, r)[0]] for i, r in enumerate(requests)]

    def _calls(self, i: int, r: Request) -> tuple[list[Call], str]:
        grounded, how = ground(r, self.backend.vision)
        calls = [
            Call(
                i,
                j,
                grounded,
                call_key(self.backend.model_id, self.backend.revision, _key_payload(grounded, j)),
                r.sampling.seed + j,
            )
            for j in range(r.sampling.n)
        ]
        return calls, how

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        """One result per request, in request order: cached samples first, then the backend for the rest."""
        start = time.monotonic()
        results, calls = self._plan(requests)
        self.stats.samples += sum(r.sampling.n for r in requests)
        todo = self._lookup(calls, results)
        progress = _Progress(
            len(todo), start, self.stats, f"{self.backend.model_id}", self.progress_bar, self.log, self.log_every_s
        )
        try:
            if todo:
                self._dispatch(todo, results, progress)
        finally:
            progress.close()
            self.stats.seconds += time.monotonic() - start
        missing = [(i, j) for i, r in enumerate(results) for j, s in enumerate(r.samples) if s is None]
        if missing:  # a backend that forgets a call is a bug, not an error row
            raise RuntimeError(f"backend {self.backend.model_id} returned no result for {len(missing)} calls")
        return results

    def _plan(self, requests: Sequence[Request]) -> tuple[list[Result], list[Call]]:
        """Empty result slots and the calls that fill them; a request no model can see fails here."""
        results: list[Result] = []
        calls: list[Call] = []
        for i, r in enumerate(requests):
            try:
                rc, how = self._calls(i, r)
            except NoVision as e:
                failed = Sample("", None, error="no_vision", error_detail=str(e))
                results.append(Result([failed] * r.sampling.n, "none"))
                continue
            results.append(Result([None] * r.sampling.n, how))  # type: ignore[list-item]
            calls.extend(rc)
        return results, calls

    def _lookup(self, calls: list[Call], results: list[Result]) -> dict[str, list[Call]]:
        """Fills cached samples in; returns the calls left to make, identical calls grouped under one key."""
        hits = self.cache.get_many([c.key for c in calls]) if self.cache else {}
        todo: dict[str, list[Call]] = {}
        for c in calls:
            if c.key in hits:
                results[c.index].samples[c.sample_index] = hits[c.key]
                self.stats.cache_hits += 1
            else:
                todo.setdefault(c.key, []).append(c)  # identical calls run once
        for res in results:
            for s in res.samples:
                if s is not None and s.cached:
                    self.stats.finish_reasons[s.finish_reason] += 1
        return todo

    def _dispatch(self, todo: dict[str, list[Call]], results: list[Result], progress: _Progress) -> None:
        """Sends one call per key to the backend; each sample is cached, filled in and counted as it arrives."""

        def on_result(call: Call, sample: Sample) -> None:
            sample.key = call.key
            if sample.ok and self.cache is not None:
                self.cache.put(self.backend.model_id, sample)
            for c in todo[call.key]:
                results[c.index].samples[c.sample_index] = sample
            self.stats.calls += 1
            self.stats.prompt_tokens += sample.prompt_tokens
            self.stats.completion_tokens += sample.completion_tokens
            if sample.ok:
                self.stats.finish_reasons[sample.finish_reason] += 1
            else:
                self.stats.errors[sample.error] += 1
            progress.update()

        self.backend.run([cs[0] for cs in todo.values()], on_result)


EngineFor = Callable[[str], Engine]  # a role name -> its engine
