"""The `images` and `images_quarantine` artifacts: Arrow layout and pandera checks.

`image` is stored as HF datasets stores images ({bytes, path}), so the parquet
loads with `datasets.load_dataset("parquet", ...)`. Object `attributes` are a
list of {key, value} structs: Arrow's physical layout of a map, kept explicit
because HF datasets has no map type.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.typing import Series

QUARANTINE_REASONS = (
    "record_malformed",  # a required field is missing or has the wrong type
    "text_undecodable",  # bytes that are not UTF-8, or lone surrogates
    "caption_missing",  # the source requires a caption and the row has none
    "duplicate_id",  # the source id was seen earlier in the source
    "duplicate_image",  # the same image bytes were seen earlier in the shard
    "path_escapes_root",  # the image path leaves the dataset folder
    "image_unreadable",  # missing file, not an image, or a corrupt/truncated one
    "image_zero_size",
    "image_too_large",  # over the pixel limit: a decompression bomb guard
    "image_size_mismatch",  # the annotation's width/height differ from the file's
    "box_invalid",  # not four finite numbers (NaN, inf, text, wrong length)
    "box_negative",  # width or height below zero
    "box_out_of_bounds",  # outside the image by more than the clip tolerance
    "box_degenerate",  # under one pixel wide or tall after clipping
)

HF_IMAGE = pa_arrow.struct([("bytes", pa_arrow.binary()), ("path", pa_arrow.string())])
ATTRIBUTES = pa_arrow.list_(pa_arrow.struct([("key", pa_arrow.string()), ("value", pa_arrow.string())]))
OBJECT = pa_arrow.struct(
    [
        ("object_id", pa_arrow.string()),
        ("label", pa_arrow.string()),
        ("bbox_xyxy", pa_arrow.list_(pa_arrow.float64(), 4)),
        ("attributes", ATTRIBUTES),
        ("area", pa_arrow.float64()),  # what the object covers in the image, in pixels (see area_from)
        ("area_from", pa_arrow.string()),  # mask (rendered), segmentation (annotated polygon) or box
        ("crowd", pa_arrow.bool_()),  # one region for many instances (COCO iscrowd): never counted or named
    ]
)
AREA_FROM = ("mask", "segmentation", "box")

IMAGES_ARROW = pa_arrow.schema(
    [
        ("image_id", pa_arrow.string()),
        ("source", pa_arrow.string()),
        ("split", pa_arrow.string()),
        ("image", HF_IMAGE),
        ("width", pa_arrow.int32()),
        ("height", pa_arrow.int32()),
        ("caption", pa_arrow.string()),
        ("objects", pa_arrow.list_(OBJECT)),
        ("metadata", pa_arrow.string()),
    ],
    # lets HF datasets decode the image column as an Image feature
    metadata={b"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}}}}).encode()},
)

QUARANTINE_ARROW = pa_arrow.schema(
    [
        ("source", pa_arrow.string()),
        ("split", pa_arrow.string()),
        ("shard", pa_arrow.int32()),
        ("row", pa_arrow.int64()),
        ("file", pa_arrow.string()),
        ("source_id", pa_arrow.string()),
        ("image_path", pa_arrow.string()),
        ("reason", pa_arrow.string()),
        ("field", pa_arrow.string()),
        ("detail", pa_arrow.string()),
        ("record", pa_arrow.string()),
    ]
)


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _box_problems(row: pd.Series) -> list[str]:
    out = []
    ids = set()
    for o in row["objects"]:
        x1, y1, x2, y2 = (float(v) for v in o["bbox_xyxy"])
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            out.append(f"{o['object_id']}: non-finite box")
        elif not (0 <= x1 < x2 <= row["width"] and 0 <= y1 < y2 <= row["height"]):
            out.append(f"{o['object_id']}: box {[x1, y1, x2, y2]} not inside {row['width']}x{row['height']}")
        elif (o.get("area_from") or "box") not in AREA_FROM:
            out.append(f"{o['object_id']}: area_from {o.get('area_from')!r} is not one of {', '.join(AREA_FROM)}")
        elif (o.get("area_from") or "box") == "box" and abs((x2 - x1) * (y2 - y1) - o["area"]) > 1e-6 * max(
            1.0, o["area"]
        ):
            out.append(f"{o['object_id']}: area {o['area']} != box area")
        elif not 0 < o["area"] <= (x2 - x1) * (y2 - y1) * (1 + 1e-6):
            out.append(f"{o['object_id']}: area {o['area']} is not within (0, box area]")
        if not o["label"]:
            out.append(f"{o['object_id']}: empty label")
        ids.add(o["object_id"])
    if len(ids) != len(row["objects"]):
        out.append("object ids repeat")
    return out


class ImagesSchema(pa.DataFrameModel):
    """One canonical image: content-hashed, decodable, every box inside it."""

    image_id: Series[str] = pa.Field(unique=True, str_matches=r"^[0-9a-f]{32}$")
    source: Series[str] = pa.Field(str_length={"min_value": 1})
    split: Series[str] = pa.Field(str_length={"min_value": 1})
    image: Series[object]
    width: Series[np.int32] = pa.Field(gt=0)
    height: Series[np.int32] = pa.Field(gt=0)
    caption: Series[str]
    objects: Series[object]
    metadata: Series[str]

    class Config:
        strict = True
        name = "images"

    @pa.check("image", name="image_has_bytes")
    @classmethod
    def _has_bytes(cls, s: Series[object]) -> Series[bool]:
        return s.map(lambda v: isinstance(v, dict) and isinstance(v.get("bytes"), bytes) and len(v["bytes"]) > 0)

    @pa.check("metadata", name="metadata_is_json_object")
    @classmethod
    def _json(cls, s: Series[str]) -> Series[bool]:
        return s.map(is_json_object)

    @pa.dataframe_check(name="boxes_inside_image")
    @classmethod
    def _boxes(cls, df: pd.DataFrame) -> Series[bool]:
        return df.apply(lambda r: not _box_problems(r), axis=1) if len(df) else pd.Series([], dtype=bool)


class ImagesQuarantineSchema(pa.DataFrameModel):
    """One rejected input row: where it came from and why."""

    source: Series[str]
    split: Series[str]
    shard: Series[np.int32] = pa.Field(ge=0)
    row: Series[np.int64] = pa.Field(ge=0)
    file: Series[str]
    source_id: Series[str]
    image_path: Series[str] = pa.Field(nullable=True)
    reason: Series[str] = pa.Field(isin=list(QUARANTINE_REASONS))
    field: Series[str] = pa.Field(str_length={"min_value": 1})
    detail: Series[str]
    record: Series[str]

    class Config:
        strict = True
        name = "images_quarantine"
