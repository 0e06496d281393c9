"""The one batched engine API: cache lookup, grounding, backend calls, stats, progress.

`Engine.generate(requests)` returns results in request order. Each sample is a
separate call with its own key and seed, so it is cached, retried and
reproduced on its own; a backend reports each sample as it finishes and the
engine commits it to the cache at once. A sample under a thinking budget is
a chain of such calls (`lgt.engines.thinking`), made in rounds so each phase
of every sample goes to the backend as one batch.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from lgt.engines.cache import CallCache, call_key
from lgt.engines.resize import fit_pixels
from lgt.engines.thinking import Chain
from lgt.engines.types import Call, ImageInput, Request, Result, Sample


class Backend(Protocol):
    model_id: str
    revision: str | None
    vision: bool
    bans_words: bool  # banned_words are enforced at decode time; else the engine drops them from the request

    def run(self, calls: list[Call], on_result: Callable[[Call, Sample], None]) -> None:
        """Generate every call, reporting each sample (or its error) once, in any order."""

    def close(self) -> None: ...


@dataclass
class EngineStats:
    samples: int = 0
    calls: int = 0  # samples sent to the backend
    dispatches: int = 0  # backend.run calls: batches of calls made together
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: Counter = field(default_factory=Counter)
    finish_reasons: Counter = field(default_factory=Counter)
    forced_close: int = 0  # samples whose thinking budget ran out
    forced_continue: int = 0  # samples whose thought was made to go on
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "calls": self.calls,
            "dispatches": self.dispatches,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "errors_by_kind": dict(self.errors),
            "finish_reasons": dict(self.finish_reasons),
            "forced_close": self.forced_close,
            "forced_continue": self.forced_continue,
            "seconds": round(self.seconds, 2),
        }


class NoVision(ValueError):
    pass


def ground(request: Request, vision: bool, max_pixels: int | None = None) -> tuple[Request, str]:
    """The request as the model will see it: images kept (scaled down to `max_pixels`), or replaced by their
    text stand-ins."""
    if not request.messages or not request.images():
        return request, "text"
    if vision:
        if max_pixels is None:
            return request, "image"
        return replace(request, messages=[_fitted(m, max_pixels) for m in request.messages]), "image"
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


def _fitted(message: dict[str, Any], max_pixels: int) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        if part.get("type") == "image":
            img = part["image"]
            part = {**part, "image": ImageInput(fit_pixels(img.data, max_pixels), img.stand_in)}
        parts.append(part)
    return {**message, "content": parts}


def _key_payload(req: Request, sample_index: int) -> dict[str, Any]:
    # `thinking` is never part of a key: a budgeted sample is keyed by its phases, which carry none
    sampling = req.sampling.model_dump(mode="json", exclude={"n", "thinking"})
    return {
        "messages": req.messages,
        "prompt": req.prompt,
        "prefill": req.prefill,
        "sampling": sampling,
        "sample_index": sample_index,
    }


@dataclass
class _Job:
    """One sample on its way: the call to make now and, under a thinking budget, the chain it belongs to."""

    call: Call
    chain: Chain | None = None


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
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="call")

    def add(self, calls: int) -> None:
        """More calls to make (a thinking budget's next phase)."""
        self.total += calls
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

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
        max_pixels: int | None = None,
    ):
        """max_pixels: images a vision model sees are scaled down to this many pixels (the role's setting)."""
        self.backend, self.cache, self.log, self.log_every_s = backend, cache, log, log_every_s
        self.max_pixels = max_pixels
        self.progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
        self.stats = EngineStats()

    def keys(self, requests: Sequence[Request]) -> list[list[str]]:
        """Each request's first calls' keys (under a thinking budget, the later phases' depend on the replies)."""
        return [[job.call.key for job in self._jobs(i, r)[0]] for i, r in enumerate(requests)]

    def _call(self, i: int, j: int, request: Request) -> Call:
        key = call_key(self.backend.model_id, self.backend.revision, _key_payload(request, j))
        return Call(i, j, request, key, request.sampling.seed + j)

    def _jobs(self, i: int, r: Request) -> tuple[list[_Job], str]:
        grounded, how = ground(r, self.backend.vision, self.max_pixels)
        if grounded.sampling.banned_words and not self.backend.bans_words:
            # keyed as sent: a sample made without the ban never answers for one made with it, nor the reverse
            grounded = replace(grounded, sampling=grounded.sampling.model_copy(update={"banned_words": []}))
        if grounded.sampling.thinking is None:
            return [_Job(self._call(i, j, grounded)) for j in range(r.sampling.n)], how
        jobs = []
        for j in range(r.sampling.n):
            chain = Chain(grounded)
            jobs.append(_Job(self._call(i, j, chain.first()), chain))
        return jobs, how

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        """One result per request, in request order.

        Calls go in rounds: every call whose inputs are known (all of them, without thinking budgets) is looked up
        in the cache and the rest sent to the backend together; a budget's next phases make the next round.
        """
        start = time.monotonic()
        results, jobs = self._plan(requests)
        self.stats.samples += sum(r.sampling.n for r in requests)
        progress = _Progress(
            0, start, self.stats, f"{self.backend.model_id}", self.progress_bar, self.log, self.log_every_s
        )
        try:
            while jobs:
                done = self._round([job.call for job in jobs], progress)
                jobs = self._advance(jobs, done, results)
        finally:
            progress.close()
            self.stats.seconds += time.monotonic() - start
        missing = [(i, j) for i, r in enumerate(results) for j, s in enumerate(r.samples) if s is None]
        if missing:  # a backend that forgets a call is a bug, not an error row
            raise RuntimeError(f"backend {self.backend.model_id} returned no result for {len(missing)} calls")
        return results

    def _plan(self, requests: Sequence[Request]) -> tuple[list[Result], list[_Job]]:
        """Empty result slots and the first calls that fill them; a request no model can see fails here."""
        results: list[Result] = []
        jobs: list[_Job] = []
        for i, r in enumerate(requests):
            try:
                rj, how = self._jobs(i, r)
            except NoVision as e:
                failed = Sample("", None, error="no_vision", error_detail=str(e))
                results.append(Result([failed] * r.sampling.n, "none"))
                continue
            banned = bool(r.sampling.banned_words) and self.backend.bans_words
            results.append(Result([None] * r.sampling.n, how, banned))  # type: ignore[list-item]
            jobs.extend(rj)
        return results, jobs

    def _round(self, calls: list[Call], progress: _Progress) -> dict[str, Sample]:
        """Every call's sample by key: cached ones from the cache, the rest from the backend (identical calls once)."""
        done = self.cache.get_many([c.key for c in calls]) if self.cache else {}
        todo: dict[str, Call] = {}
        for c in calls:
            if c.key in done:
                self.stats.cache_hits += 1
                self.stats.finish_reasons[done[c.key].finish_reason] += 1
            else:
                todo.setdefault(c.key, c)
        if todo:
            progress.add(len(todo))
            self._dispatch(list(todo.values()), done, progress)
        return done

    def _dispatch(self, calls: list[Call], done: dict[str, Sample], progress: _Progress) -> None:
        """Sends the calls to the backend; each sample is cached, kept and counted as it arrives."""

        def on_result(call: Call, sample: Sample) -> None:
            sample.key = call.key
            if sample.ok and self.cache is not None:
                self.cache.put(self.backend.model_id, sample)
            done[call.key] = sample
            self.stats.calls += 1
            self.stats.prompt_tokens += sample.prompt_tokens
            self.stats.completion_tokens += sample.completion_tokens
            if sample.ok:
                self.stats.finish_reasons[sample.finish_reason] += 1
            else:
                self.stats.errors[sample.error] += 1
            progress.update()

        self.stats.dispatches += 1
        self.backend.run(calls, on_result)

    def _advance(self, jobs: list[_Job], done: dict[str, Sample], results: list[Result]) -> list[_Job]:
        """Fills in finished samples; returns the jobs whose chains need another call."""
        later: list[_Job] = []
        for job in jobs:
            c = job.call
            sample = done.get(c.key)
            if sample is None:
                continue  # generate() reports the forgotten call
            if job.chain is None:
                results[c.index].samples[c.sample_index] = sample
                continue
            step = job.chain.step(sample)
            if isinstance(step, Sample):
                results[c.index].samples[c.sample_index] = step
                self.stats.forced_close += step.forced_close
                self.stats.forced_continue += step.forced_continue
            else:
                later.append(_Job(self._call(c.index, c.sample_index, step), job.chain))
        return later


EngineFor = Callable[[str], Engine]  # a role name -> its engine
