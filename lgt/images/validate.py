"""Canonical image rows: validate what a loader read, keep it or quarantine it.

Every source loader yields `RawRecord`s; `canonicalize` turns each into either
a canonical row for the `images` asset or a row for `images_quarantine` with a
reason, so input rows = images + quarantine, always.

Box rule (documented in docs/recipes.md): a box is parsed as four finite numbers.
Width or height below zero is `box_negative`. A coordinate outside the image by
more than `tolerance` x the image side is `box_out_of_bounds`; within that it
is clipped to the image. A box narrower or shorter than one pixel after
clipping is `box_degenerate`. One bad box quarantines the whole image, because
questions count and compare objects and a silently missing object would make
their gold answers wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from PIL import Image

from schemas.images import IMAGES_ARROW, QUARANTINE_ARROW, QUARANTINE_REASONS

_BUFFER_REPR = re.compile(r" ?<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class Quarantine(Exception):
    def __init__(self, reason: str, field: str, detail: str):
        assert reason in QUARANTINE_REASONS, reason
        super().__init__(f"{reason} ({field}): {detail}")
        self.reason, self.field, self.detail = reason, field, detail


@dataclass
class RawObject:
    label: Any
    bbox: Any  # as the source gave it
    bbox_format: str = "xyxy"  # or "xywh"
    attributes: dict[str, str] = field(default_factory=dict)
    object_id: str | None = None
    area: Any = None  # pixels the object covers (mask or segmentation); None: the box's area
    area_from: str = "box"  # where `area` comes from: "mask", "segmentation" or "box"
    crowd: bool = False  # one region for many instances (COCO iscrowd)


@dataclass
class RawRecord:
    """One input row as a loader read it, before any validation."""

    source: str
    split: str
    shard: int
    row: int  # position in the source (0-based), for error messages
    file: str  # the source file the row came from
    source_id: str
    image_bytes: bytes | None = None
    image_path: str | None = None
    caption: Any = None  # str, bytes, or None
    objects: list[RawObject] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    declared_size: tuple[int, int] | None = None
    require_caption: bool = False
    error: Quarantine | None = None  # a problem the loader already found
    raw: dict[str, Any] = field(default_factory=dict)  # the input record, for the quarantine table


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 40_000_000
    box_clip_tolerance: float = 0.02


def image_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def decode_text(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise Quarantine("text_undecodable", field_name, f"not UTF-8 at byte {e.start}") from None
    if not isinstance(value, str):
        raise Quarantine("record_malformed", field_name, f"expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")  # lone surrogates (from JSON "\udc80") cannot be stored
    except UnicodeEncodeError as e:
        raise Quarantine("text_undecodable", field_name, f"invalid character at {e.start}") from None
    return value


def open_image(data: bytes | None, limits: Limits, name: str = "image bytes") -> tuple[int, int, str]:
    """Width, height and format of fully decodable image bytes, or a Quarantine whose detail names `name`."""
    if not data:
        raise Quarantine("image_unreadable", "image", "no image bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            w, h = img.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise Quarantine("image_too_large", "image", f"{name}: {e}") from None
        except Exception as e:  # PIL raises many kinds for bad headers
            raise Quarantine("image_unreadable", "image", pil_error(e, name)) from None
        if w <= 0 or h <= 0:
            raise Quarantine("image_zero_size", "image", f"{w}x{h}")
        if w * h > limits.max_pixels:
            raise Quarantine("image_too_large", "image", f"{w}x{h} = {w * h} pixels > max_pixels {limits.max_pixels}")
        try:
            img.load()  # decode fully: truncated and corrupt files fail here
        except Exception as e:
            raise Quarantine("image_unreadable", "image", pil_error(e, name)) from None
        return w, h, img.format or ""


def pil_error(e: Exception, name: str) -> str:
    """A PIL failure naming the image: PIL names the in-memory buffer ("<_io.BytesIO object at 0x…>") instead."""
    return f"{name}: {type(e).__name__}: {_BUFFER_REPR.sub('', str(e))}"


def image_name(rec: RawRecord) -> str:
    """How a detail names a record's image: its path, else the source file and row."""
    return rec.image_path or f"{rec.file} row {rec.row}"


def clean_box(raw: Any, fmt: str, w: int, h: int, tol: float, where: str) -> list[float]:
    """xyxy pixel box inside the image, or a Quarantine (see the module docstring)."""
    if isinstance(raw, (str, bytes)):  # iterating "1020" would read as the box [1, 0, 2, 0]
        raise Quarantine("box_invalid", where, f"not four numbers: {raw!r}")
    try:
        vals = [float(v) for v in raw]
    except (TypeError, ValueError):
        raise Quarantine("box_invalid", where, f"not four numbers: {raw!r}") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise Quarantine("box_invalid", where, f"not four finite numbers: {raw!r}")
    x1, y1, a, b = vals
    x2, y2 = (x1 + a, y1 + b) if fmt == "xywh" else (a, b)
    if x2 < x1 or y2 < y1:
        raise Quarantine("box_negative", where, f"negative width or height: {raw!r} ({fmt})")
    tx, ty = tol * w, tol * h
    if x1 < -tx or y1 < -ty or x2 > w + tx or y2 > h + ty:
        raise Quarantine("box_out_of_bounds", where, f"{[x1, y1, x2, y2]} outside {w}x{h} beyond tolerance {tol}")
    x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
    y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise Quarantine("box_degenerate", where, f"{[x1, y1, x2, y2]} is under one pixel wide or tall")
    return [x1, y1, x2, y2]


def _row(rec: RawRecord, limits: Limits) -> dict[str, Any]:
    if rec.error is not None:
        raise rec.error
    caption = decode_text(rec.caption, "caption")
    split = decode_text(rec.split, "split")  # DOCCI and parquet take it from the row; Arrow cannot store surrogates
    if rec.require_caption and not (caption and caption.strip()):
        raise Quarantine("caption_missing", "caption", "the source requires a caption")
    w, h, fmt = open_image(rec.image_bytes, limits, image_name(rec))
    if rec.declared_size and tuple(rec.declared_size) != (w, h):
        dw, dh = rec.declared_size
        raise Quarantine("image_size_mismatch", "image", f"annotation says {dw}x{dh}, file is {w}x{h}")
    objects = []
    for i, o in enumerate(rec.objects):
        where = f"objects[{i}]"
        label = decode_text(o.label, f"{where}.label")
        if not label or not label.strip():
            raise Quarantine("record_malformed", f"{where}.label", "empty label")
        box = clean_box(o.bbox, o.bbox_format, w, h, limits.box_clip_tolerance, f"{where}.bbox")
        oid = decode_text(str(o.object_id), f"{where}.object_id") if o.object_id is not None else str(i)
        attrs = {
            decode_text(str(k), f"{where}.attributes"): decode_text(str(v), f"{where}.attributes.{k}")
            for k, v in (o.attributes or {}).items()
        }
        area, area_from = object_area(o, box, f"{where}.area")
        objects.append(
            {
                "object_id": oid,
                "label": label.strip(),
                "bbox_xyxy": box,
                "attributes": [{"key": k, "value": v} for k, v in sorted(attrs.items())],
                "area": area,
                "area_from": area_from,
                "crowd": bool(o.crowd),
            }
        )
    if len({o["object_id"] for o in objects}) != len(objects):
        raise Quarantine("record_malformed", "objects", "object ids repeat within the image")
    # the engine's own keys win over same-named fields of the source row
    meta = {**rec.metadata, "source_id": rec.source_id, "shard": rec.shard, "row": rec.row, "format": fmt}
    return {
        "image_id": image_id_of(rec.image_bytes),  # type: ignore[arg-type]
        "source": rec.source,
        "split": split,
        "image": {"bytes": rec.image_bytes, "path": rec.image_path},
        "width": w,
        "height": h,
        "caption": caption or "",
        "objects": objects,
        "metadata": json.dumps(meta, sort_keys=True, default=str),
    }


def object_area(o: RawObject, box: list[float], field: str) -> tuple[float, str]:
    """(area, where it came from): the source's mask or segmentation area, else the box's.

    A segmentation area above the (clipped) box's is capped at the box: the box bounds the object.
    """
    box_area = (box[2] - box[0]) * (box[3] - box[1])
    if o.area is None or o.area_from == "box":
        return box_area, "box"
    if isinstance(o.area, bool) or not isinstance(o.area, int | float) or not math.isfinite(o.area) or o.area < 0:
        raise Quarantine("record_malformed", field, f"area {o.area!r} is not a number >= 0")
    if o.area == 0:  # an empty segmentation says nothing of the object's size: its box does
        return box_area, "box"
    return min(float(o.area), box_area), o.area_from


def storable(text: str | None) -> str | None:
    """Text Arrow can store: lone surrogates (JSON "\\udc80" in an id or a path) become escapes."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def quarantine_row(rec: RawRecord, q: Quarantine) -> dict[str, Any]:
    raw = json.dumps(rec.raw, sort_keys=True, default=repr, ensure_ascii=True)
    return {
        "source": storable(rec.source),
        "split": storable(rec.split),
        "shard": rec.shard,
        "row": rec.row,
        "file": storable(rec.file),
        "source_id": storable(str(rec.source_id)),
        "image_path": storable(rec.image_path),
        "reason": q.reason,
        "field": storable(q.field),
        "detail": storable(q.detail[:2000]),
        "record": raw[:20_000],
    }


def canonicalize(records: Iterable[RawRecord], limits: Limits = Limits()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("image", row) or ("quarantine", row) for every record, in order."""
    seen: set[str] = set()
    for rec in records:
        try:
            row = _row(rec, limits)
            if row["image_id"] in seen:
                raise Quarantine(
                    "duplicate_image", "image", f"same bytes as image {row['image_id']} earlier in this shard"
                )
        except Quarantine as q:
            yield "quarantine", quarantine_row(rec, q)
            continue
        seen.add(row["image_id"])
        yield "image", row


def safe_join(root: str, rel: Any, field_name: str = "image_file") -> str:
    """root/rel, refusing absolute paths and any that climb out of root."""
    rel = decode_text(rel, field_name)
    if not rel:
        raise Quarantine("record_malformed", field_name, "no image path")
    if "\x00" in rel:  # os.path and open() raise ValueError on it, which would stop the whole shard
        raise Quarantine("record_malformed", field_name, "a NUL character in the image path")
    root_real = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root_real, rel))
    if os.path.isabs(rel) or os.path.commonpath([root_real, full]) != root_real:
        raise Quarantine("path_escapes_root", field_name, f"{rel!r} is outside {root}")
    return full


def read_image_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Quarantine("image_unreadable", "image", f"cannot read {path}: {e.strerror}") from None


@dataclass
class ShardResult:
    images: pa.Table
    quarantine: pa.Table
    input_rows: int
    seconds: float

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(self.quarantine.column("reason").to_pylist()).items()))


def build_shard(
    records: Iterable[RawRecord],
    limits: Limits = Limits(),
    progress: Callable[[int, int, float], None] | None = None,
    every_s: float = 5.0,
    batch_rows: int = 256,
) -> ShardResult:
    """Canonicalize a shard into the two Arrow tables, converting in batches to bound memory."""
    start = last = time.monotonic()
    img_batches: list[pa.RecordBatch] = []
    q_rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    n = 0
    for kind, row in canonicalize(records, limits):
        n += 1
        if kind == "image":
            pending.append(row)
            if len(pending) >= batch_rows:
                img_batches.append(pa.RecordBatch.from_pylist(pending, schema=IMAGES_ARROW))
                pending = []
        else:
            q_rows.append(row)
        now = time.monotonic()
        if progress and now - last >= every_s:
            progress(n, len(q_rows), now - start)
            last = now
    if pending:
        img_batches.append(pa.RecordBatch.from_pylist(pending, schema=IMAGES_ARROW))
    images = pa.Table.from_batches(img_batches, schema=IMAGES_ARROW)
    quarantine = pa.Table.from_pylist(q_rows, schema=QUARANTINE_ARROW)
    if images.num_rows + quarantine.num_rows != n:  # the invariant every caller relies on
        raise AssertionError(f"{n} input rows became {images.num_rows} images + {quarantine.num_rows} quarantined")
    return ShardResult(images, quarantine, n, time.monotonic() - start)
