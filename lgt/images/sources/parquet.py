"""Parquet / HF datasets: any parquet with a column mapping in the recipe.

The image column may hold an HF image struct {bytes, path}, raw bytes, or a
path relative to `image_root`. The objects column (optional) holds a list of
structs with `label`, `bbox` (or `bbox_xyxy`), optional `attributes` and
`object_id`; the recipe's `bbox_format` says how to read the box.

With `watch: true` the path is a folder watched for shard files: each file is one shard, numbered by the last
number in its name (`part-00007.parquet` is shard 7), so a new file is a new partition and no other shard moves.
Files whose names start with `.` or `_` are skipped: a writer writes under such a name, then renames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from lgt.images.sources.base import SourceSettings, first_occurrences, require_dir, shard_range
from lgt.images.validate import Quarantine, RawObject, RawRecord, read_image_file, safe_join
from lgt.settings import Strict, resolve_path


class ParquetColumns(Strict):
    image: str = Field(description="HF image struct {bytes, path}, raw bytes, or a path string")
    caption: str | None = None
    id: str | None = None
    objects: str | None = Field(None, description="list of structs with label, bbox and optional attributes")
    split: str | None = None


class ParquetSource(SourceSettings):
    kind: Literal["parquet"]
    path: Path = Field(description="a parquet file or a folder of them")
    columns: ParquetColumns
    image_root: Path | None = Field(None, description="root for images given as relative paths")
    bbox_format: Literal["xyxy", "xywh"] = "xyxy"
    require_caption: bool = True
    watch: bool = Field(
        False,
        description="the path is a folder of shard files, one shard each, numbered by the last number in the file "
        "name; the shard_files sensor adds a partition for each new file (so `shards` is not set)",
    )

    _paths = field_validator("path", "image_root")(resolve_path)

    @model_validator(mode="after")
    def _watch_numbers_shards(self) -> ParquetSource:
        if self.watch and "shards" in self.model_fields_set:
            raise ValueError("a watched folder numbers its shards by file name: remove `shards`")
        return self


def watched_shards(folder: Path) -> dict[int, Path]:
    """Shard number -> file of a watched folder (empty while the folder does not exist yet)."""
    out: dict[int, Path] = {}
    for f in sorted(Path(folder).glob("*.parquet")) if Path(folder).is_dir() else []:
        if f.name.startswith((".", "_")):  # still being written
            continue
        numbers = re.findall(r"\d+", f.stem)
        if not numbers:
            raise ValueError(f"{f}: a shard file in a watched folder needs a number in its name (part-00007.parquet)")
        shard = int(numbers[-1])
        if shard in out:
            raise ValueError(f"{f} and {out[shard]} both name shard {shard}")
        out[shard] = f
    return dict(sorted(out.items()))


def parquet_files(path: Path) -> list[Path]:
    p = Path(path)
    files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
    if not files or not all(f.exists() for f in files):
        raise FileNotFoundError(f"{p}: no parquet file there")
    return files


def _image(value: Any, src) -> tuple[bytes, str | None]:
    path = None
    if isinstance(value, dict):
        path = value.get("path")
        if value.get("bytes"):
            return value["bytes"], path
        value = path
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    if isinstance(value, str) and value:
        if src.image_root is None:
            raise Quarantine(
                "image_unreadable", src.columns.image, f"a path {value!r} but the recipe sets no image_root"
            )
        return read_image_file(safe_join(str(src.image_root), value, src.columns.image)), value
    raise Quarantine("image_unreadable", src.columns.image, "no image bytes or path")


def read_parquet(src: ParquetSource, shard: int) -> Iterator[RawRecord]:
    cols = src.columns
    wanted = [c for c in (cols.image, cols.caption, cols.id, cols.objects, cols.split) if c]
    if src.watch:
        files = watched_shards(src.path)
        if shard not in files:
            raise FileNotFoundError(f"{src.path}: no shard file numbered {shard} in the watched folder")
        files = [files[shard]]
    else:
        files = parquet_files(src.path)
    if src.image_root is not None:
        require_dir(src.image_root, "image_root")
    ids: list[Any] = []
    for f in files:
        names = pq.read_schema(f).names
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f"{f}: column(s) {missing} named in the recipe are not in the file (it has {names})")
        if cols.id:
            ids.extend(pq.read_table(f, columns=[cols.id]).column(0).to_pylist())
        else:
            ids.extend(range(len(ids), len(ids) + pq.ParquetFile(f).metadata.num_rows))
    first = first_occurrences(ids)
    rows = range(len(ids)) if src.watch else shard_range(len(ids), src.shards, shard)  # a watched file is one shard
    offset = 0
    for f in files:
        pf = pq.ParquetFile(f)
        n = pf.metadata.num_rows
        if offset + n <= rows.start or offset >= rows.stop:
            offset += n
            continue
        for batch in pf.iter_batches(batch_size=256, columns=wanted):
            for rec_d in batch.to_pylist():
                row, offset = offset, offset + 1
                if row in rows:
                    yield _record(src, shard, row, str(f), rec_d, first)
    return


def _record(src, shard: int, row: int, file: str, d: dict, first: dict) -> RawRecord:
    cols = src.columns
    sid = d.get(cols.id) if cols.id else row
    img = d.get(cols.image)
    path = img.get("path") if isinstance(img, dict) else img
    rec = RawRecord(
        source=src.name,
        split=str(d.get(cols.split) or src.split) if cols.split else src.split,
        shard=shard,
        row=row,
        file=file,
        source_id=str(sid),
        image_path=path if isinstance(path, str) else None,  # set now so a quarantine row names a bad path
        caption=d.get(cols.caption) if cols.caption else None,
        require_caption=src.require_caption and cols.caption is not None,  # no caption column: nothing to require
        raw={k: v for k, v in d.items() if k != cols.image},
    )
    try:
        if sid is None:
            raise Quarantine("record_malformed", cols.id or "<row>", "the id is null")
        if first.get(sid) != row:
            raise Quarantine("duplicate_id", cols.id or "<row>", f"{sid!r} first seen at row {first.get(sid)}")
        rec.image_bytes, rec.image_path = _image(img, src)
        for i, o in enumerate((d.get(cols.objects) or []) if cols.objects else []):
            if not isinstance(o, dict):
                raise Quarantine("record_malformed", f"{cols.objects}[{i}]", "an object must be a struct")
            attrs = o.get("attributes") or {}
            if isinstance(attrs, list):  # arrow maps arrive as (key, value) pairs, our layout as {key, value} structs
                try:
                    attrs = dict((a["key"], a["value"]) if isinstance(a, dict) else a for a in attrs)
                except (KeyError, TypeError, ValueError):
                    attrs = None
            if not isinstance(attrs, dict):
                where = f"{cols.objects}[{i}].attributes"
                raise Quarantine("record_malformed", where, "expected a map or {key, value} pairs")
            rec.objects.append(
                RawObject(
                    label=o.get("label"),
                    bbox=o.get("bbox") if o.get("bbox") is not None else o.get("bbox_xyxy"),
                    bbox_format=src.bbox_format,
                    # a struct column has every field in every row: a null one is an absent attribute, not "None"
                    attributes={str(k): str(v) for k, v in attrs.items() if v is not None},
                    object_id=o.get("object_id"),
                )
            )
        rec.metadata = {"file": Path(file).name}
    except Quarantine as q:
        rec.error = q
    return rec
