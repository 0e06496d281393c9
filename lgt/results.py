"""What every stage's build function returns: one shard's table and where the candidates went."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class StageResult:
    table: pa.Table
    funnel: dict[str, int] = field(default_factory=dict)  # ordered counts, largest first
    rejects: Counter = field(default_factory=Counter)  # reason -> count
    by_family: Counter = field(default_factory=Counter)  # label -> count (family, category, rule, ...)
    seconds: float = 0.0  # set by @timed


def timed(build: Callable[..., StageResult]) -> Callable[..., StageResult]:
    """A build function whose result records how long it took (`StageResult.seconds`)."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> StageResult:
        start = time.perf_counter()
        result = build(*args, **kwargs)
        result.seconds = time.perf_counter() - start
        return result

    return wrapper
