"""Content ids: the same content always gets the same id, so reruns and dedup agree across stages."""

from __future__ import annotations

import hashlib
from typing import Any


def content_id(*parts: Any) -> str:
    """32 hex characters of the sha256 of the parts joined by the unit separator."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def in_share(share: float | None, key: str) -> bool:
    """Whether an item is in a recipe's `share`: a hash of its key falls below it (empty: every item).

    Each item is decided alone, so adding, dropping or editing other items never changes it: a 1 % change of
    the data re-sends only the changed items, and unchanged rows stay byte-identical. Shares are nested: an
    item in a share of 0.01 is in every larger share, so a stage that sends fewer questions sends a subset.
    """
    return share is None or int(content_id("lgt-share", key)[:15], 16) < share * 16**15
