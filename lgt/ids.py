"""Content ids: the same content always gets the same id, so reruns and dedup agree across stages."""

from __future__ import annotations

import hashlib
from typing import Any


def content_id(*parts: Any) -> str:
    """32 hex characters of the sha256 of the parts joined by the unit separator."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
