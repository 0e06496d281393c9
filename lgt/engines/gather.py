"""Several threads' `generate` calls made as one batch: a ranged run's partitions share each backend call.

`Gather(workers)` is shared by that many threads (one per partition of a run).
`gather.engine(engine)` wraps an `Engine`; its `generate(requests)` blocks until
every live worker is waiting in `generate` or has said it is `finished()`. Then
the last to arrive makes one `Engine.generate` per engine with every waiting
caller's requests and hands each caller its own results. A worker that never
calls `generate` only has to finish. Samples do not depend on their batch
(per-row seeds; the cache key is the request's), so a partition gets the results
it would get alone, only sooner.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lgt.engines.engine import Engine
from lgt.engines.types import Request, Result

__all__ = ["Gather"]


@dataclass(eq=False)
class _Slot:
    engine: Engine
    requests: list[Request]
    results: list[Result] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class Gather:
    def __init__(self, workers: int):
        self._cv = threading.Condition()
        self._live = workers
        self._pending: list[_Slot] = []

    def engine(self, engine: Engine) -> _GatheredEngine:
        return _GatheredEngine(self, engine)

    def generate(self, engine: Engine, requests: Sequence[Request]) -> list[Result]:
        slot = _Slot(engine, list(requests))
        with self._cv:
            self._pending.append(slot)
            self._flush_if_all_waiting()
            self._cv.wait_for(lambda: slot.done)
        if slot.error is not None:
            raise slot.error
        return slot.results

    def finished(self) -> None:
        """A worker is done (or failed): the others no longer wait for it."""
        with self._cv:
            self._live -= 1
            self._flush_if_all_waiting()

    def _flush_if_all_waiting(self) -> None:
        # called with the lock held; every other live worker is blocked in wait_for, so holding it costs nothing
        if not self._pending or len(self._pending) < self._live:
            return
        batch, self._pending = self._pending, []
        by_engine: dict[int, list[_Slot]] = {}
        for slot in batch:
            by_engine.setdefault(id(slot.engine), []).append(slot)
        for slots in by_engine.values():
            try:
                results = slots[0].engine.generate([r for s in slots for r in s.requests])
            except BaseException as e:  # every caller of the batch sees the failure
                for s in slots:
                    s.error = e
            else:
                i = 0
                for s in slots:
                    s.results, i = results[i : i + len(s.requests)], i + len(s.requests)
        for slot in batch:
            slot.done = True
        self._cv.notify_all()


class _GatheredEngine:
    """An `Engine` whose `generate` joins the gather; everything else (backend, stats) is the engine's."""

    def __init__(self, gather: Gather, engine: Engine):
        self._gather, self._engine = gather, engine

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        return self._gather.generate(self._engine, requests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)
