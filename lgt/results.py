"""What every stage's build function returns: one shard's table and where the candidates went."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class StageResult:
    table: pa.Table
    funnel: dict[str, int] = field(default_factory=dict)  # ordered counts, largest first
    rejects: Counter = field(default_factory=Counter)  # reason -> count
    by_family: Counter = field(default_factory=Counter)  # label -> count (family, category, rule, ...)
    seconds: float = 0.0
