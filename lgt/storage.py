"""Parquet files under a local or fsspec base path, one per asset partition.

Layout: <base>/storage/<asset_key>/<source>/<shard>.parquet for partitioned
assets, <base>/storage/<asset_key>.parquet otherwise. Local writes go to a
temporary file first and are renamed into place, so a killed run never
leaves a half-written partition behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def artifact_path(base: str, asset_key: str, partition_key: str | None = None) -> str:
    base = base.rstrip("/")
    if partition_key is None:
        return f"{base}/storage/{asset_key}.parquet"
    if ".." in partition_key.split("/"):
        raise ValueError(f"partition key {partition_key!r} may not contain '..'")
    return f"{base}/storage/{asset_key}/{partition_key}.parquet"


def write_table(table: pa.Table, url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if _is_local(fs):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    else:
        with fs.open(path, "wb") as f:
            pq.write_table(table, f, compression="zstd")


def read_table(url: str) -> pa.Table:
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"{url}: no such artifact; materialize the upstream asset first")
    with fs.open(path, "rb") as f:
        return pq.read_table(f)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def table_digest(table: pa.Table, exclude: tuple[str, ...] = ()) -> str:
    """Content hash of a table's values (Arrow IPC of the combined columns)."""
    keep = table.drop_columns([c for c in exclude if c in table.column_names]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, keep.schema.remove_metadata()) as w:
        w.write_table(keep)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def replace_dir(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`, replacing an old `out`; the old folder is deleted only once the new one is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
