"""Per-shard balance of gold kinds, so that no kind of answer predicts the gold without the image.

The bias audit (`lgt.questions.audit`) found the counting families guessable blind on the demo scenes: most
groups hold one object, so "1" was the gold of 78 % of counting questions, and "the same number of each" of
50 % of count comparisons. Within a shard, each such family keeps at most `MAX_SHARE` of its questions per gold
kind; the surplus is dropped by a seeded hash of the question id and counted as `skip/gold_balance`. A skipped
question costs nothing; a guessable one teaches the guess.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from lgt.ids import content_id
from lgt.questions.families import NONE_OF_EITHER, SAME_COUNT, count_kind

MAX_SHARE = 0.35  # the audit's limit for a blind baseline


def _count_kind(row: dict[str, Any]) -> str:
    return count_kind(int(row["answer"]))


def _comparison_kind(row: dict[str, Any]) -> str:
    if row["answer"] in (SAME_COUNT, NONE_OF_EITHER):
        return "same" if row["answer"] == SAME_COUNT else "none"
    first = json.loads(row["spec"])["a_things"]  # {a} is named first in every phrasing
    return "more of the first" if row["answer"] == f"more {first}" else "more of the second"


GOLD_KINDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "counting": _count_kind,
    "count_comparison": _comparison_kind,
}


def kept_per_kind(counts: dict[str, int], max_share: float = MAX_SHARE) -> int:
    """The most questions a kind may keep: the largest cap c with c <= max_share * sum(min(n, c))."""
    for cap in range(max(counts.values(), default=0), 0, -1):
        if cap <= max_share * sum(min(n, cap) for n in counts.values()) + 1e-9:
            return cap
    return 0


def balance(rows: list[dict[str, Any]], seed: int, skips: Counter) -> list[dict[str, Any]]:
    """The rows with each balanced family capped per gold kind; other families untouched, order kept."""
    drop: set[int] = set()
    for family, kind_of in GOLD_KINDS.items():
        by_kind: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            if r["family"] == family:
                by_kind[kind_of(r)].append(i)
        cap = kept_per_kind({k: len(v) for k, v in by_kind.items()})
        for idx in by_kind.values():
            # the `cap` lowest by a seeded hash of the question id: an edit elsewhere in the shard moves the cap
            # by one at most, so it keeps or drops one question more, never redraws the rest
            ranked = sorted(idx, key=lambda i: content_id(seed, "gold_balance", rows[i]["question_id"]))
            drop.update(ranked[cap:])
    skips["gold_balance"] += len(drop)
    return [r for i, r in enumerate(rows) if i not in drop]
