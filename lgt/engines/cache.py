"""Content-addressed call cache: SQLite in WAL mode, one row per finished sample.

Each result is committed as it arrives, so a run killed with `kill -9` loses
no finished call and the rerun makes only the missing ones. Several processes
may write at once (WAL, a busy timeout, INSERT OR REPLACE of identical rows).
Failures are never stored; `finish_reason = "length"` is stored and visible.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from lgt.engines.types import Sample

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL
)
"""


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(o: Any) -> Any:
    from lgt.engines.types import ImageInput

    if isinstance(o, ImageInput):  # images enter the key by content hash only
        return {"image_sha256": o.sha256}
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    raise TypeError(f"cannot key {type(o).__name__}")


def call_key(model: str, revision: str | None, payload: dict[str, Any]) -> str:
    blob = canonical({"model": model, "revision": revision, **payload})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit (isolation_level=None): every put is its own durable transaction
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            self._local.conn = conn
        return conn

    def get_many(self, keys: list[str]) -> dict[str, Sample]:
        out: dict[str, Sample] = {}
        conn = self._conn()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = conn.execute(
                f"SELECT key, text, finish_reason, prompt_tokens, completion_tokens, latency_s FROM calls "
                f"WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for key, text, fr, pt, ct, lat in rows:
                out[key] = Sample(text, fr, pt, ct, lat, cached=True, key=key)
        return out

    def put(self, model: str, sample: Sample) -> None:
        if not sample.ok or not sample.key:
            raise ValueError("only finished samples with a key are cached")
        self._conn().execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sample.key,
                model,
                sample.text,
                sample.finish_reason,
                sample.prompt_tokens,
                sample.completion_tokens,
                sample.latency_s,
                time.time(),
            ),
        )

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
